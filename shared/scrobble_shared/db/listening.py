"""One ``LISTEN`` connection kept open for a cache that Postgres tells about changes.

A trigger sends ``NOTIFY <channel>, '<id>'`` on every change; :class:`ChangeListener` hands
each payload to ``on_change``. Whenever a notification may have been missed (before the
first connection, after one is lost, on every reconnect) it calls ``on_reset`` so the
cache drops everything, and :attr:`ChangeListener.listening` is False until it is back:
caches read through to the database meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

MAX_RETRY_S = 30.0


class ChangeListener:
    def __init__(
        self, channel: str, on_change: Callable[[str], None], on_reset: Callable[[], None]
    ) -> None:
        self._channel = channel
        self._on_change = on_change
        self._on_reset = on_reset
        self._conn: asyncpg.Connection | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_change(str(payload))

    def _lost(self, _conn: object) -> None:
        log.warning("%s: lost the LISTEN connection; dropping the cache", self._channel)
        self._conn = None
        self._on_reset()

    async def run(self, dsn: str) -> None:
        """Keep the LISTEN connection open until cancelled, reconnecting when it drops."""
        delay = 1.0
        try:
            while True:
                if not self.listening:
                    try:
                        conn = await asyncpg.connect(dsn, timeout=5)
                        await conn.add_listener(self._channel, self._notified)
                        conn.add_termination_listener(self._lost)
                        self._conn = conn
                        self._on_reset()  # anything may have changed while we were away
                        delay = 1.0
                    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                        log.warning("%s: cannot LISTEN (%s); retrying", self._channel, exc)
                        delay = min(delay * 2, MAX_RETRY_S)
                await asyncio.sleep(delay)
        finally:
            opened, self._conn = self._conn, None
            if opened is not None and not opened.is_closed():
                # Our own close at shutdown is no lost connection.
                opened.remove_termination_listener(self._lost)
                await opened.close()
