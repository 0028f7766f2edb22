"""Each user's connections, cached in the process and dropped when Postgres says they changed.

A trigger on ``connections`` sends ``NOTIFY connections_changed, '<user id>'``; the cache
listens on a connection of its own. When that connection is lost a notification may have
been missed, so the whole cache is dropped and the listener reconnects. Entries also age
out after ``ttl`` as a last line of defence.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence

import asyncpg

from scrobble_ingest import store
from scrobble_shared.db import Conn
from scrobble_shared.work import ConnectionRules

log = logging.getLogger(__name__)
CHANNEL = "connections_changed"


class ConnectionCache:
    def __init__(self, ttl_s: float = 300.0) -> None:
        self._ttl = ttl_s
        self._entries: dict[uuid.UUID, tuple[float, list[ConnectionRules]]] = {}
        self._listener: asyncpg.Connection | None = None

    async def lookup(
        self, conn: Conn, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ConnectionRules]]:
        now = time.monotonic()
        found: dict[uuid.UUID, list[ConnectionRules]] = {}
        missing: list[uuid.UUID] = []
        # Without a live LISTEN a change could go unheard: read through until it is back.
        listening = self._listener is not None and not self._listener.is_closed()
        for user in user_ids:
            entry = self._entries.get(user) if listening else None
            if entry is not None and now - entry[0] < self._ttl:
                found[user] = entry[1]
            else:
                missing.append(user)
        if missing:
            loaded = await store.load_connections(conn, missing)
            for user, rules in loaded.items():
                self._entries[user] = (now, rules)
                found[user] = rules
        return found

    def invalidate(self, user_id: uuid.UUID | None = None) -> None:
        if user_id is None:
            self._entries.clear()
        else:
            self._entries.pop(user_id, None)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            self.invalidate(uuid.UUID(str(payload)))
        except ValueError:
            self.invalidate()

    def _on_lost(self, _conn: object) -> None:
        log.warning("connection cache: lost the LISTEN connection; dropping the cache")
        self.invalidate()
        self._listener = None

    async def listen(self, dsn: str) -> None:
        """Keep a LISTEN connection open until cancelled, reconnecting when it drops."""
        delay = 1.0
        try:
            while True:
                if self._listener is None or self._listener.is_closed():
                    try:
                        listener = await asyncpg.connect(dsn, timeout=5)
                        await listener.add_listener(CHANNEL, self._on_notify)
                        listener.add_termination_listener(self._on_lost)
                        self._listener = listener
                        self.invalidate()  # anything may have changed while we were away
                        delay = 1.0
                    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                        log.warning("connection cache: cannot LISTEN (%s); retrying", exc)
                        delay = min(delay * 2, 30.0)
                await asyncio.sleep(delay)
        finally:
            if self._listener is not None and not self._listener.is_closed():
                await self._listener.close()
