"""Sources by the secret in their webhook URL, cached in the process.

A trigger announces every change to a source, its secret or its mappings on
``sources_changed`` (migration 0007) with the source's id; what was read of that source
is dropped then, so a rotated secret is refused from the moment the change is heard.
While no LISTEN is open, and after it comes back, every lookup reads through to Postgres.
A lookup that overlapped a change is not cached (the generation count moved), so a stale
answer never outlives the change it raced. Unknown secrets are never cached: each is one
indexed query, and a text that cannot be a secret of ours (:data:`SECRET_SHAPE`) is
refused without one.

When Postgres cannot be reached, a source looked up in the last :data:`STALE_FOR_S`
seconds is still used: nobody can change it in a database that is away, and Plex and
Jellyfin do not resend a webhook that failed, so refusing would lose the play. A source
never seen before is a 503 then (the caller's :class:`DatabaseUnavailable`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final
from uuid import UUID

import asyncpg

from scrobble_shared.db.connect import DatabaseUnavailable
from scrobble_shared.db.listening import ChangeListener
from scrobble_shared.db.sources import source_by_secret
from scrobble_shared.sources import Source, secret_hash

log = logging.getLogger(__name__)

CHANNEL: Final = "sources_changed"
STALE_FOR_S: Final = 3600.0
DATABASE_AWAY: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
# new_secret() makes 32 URL-safe characters; rotated or older secrets are never longer.
SECRET_SHAPE: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")


class SourceDirectory:
    def __init__(self, pool: asyncpg.Pool, ttl_s: float = 60.0) -> None:
        self._pool = pool
        self._ttl = ttl_s
        # secret hash -> (when read, source); and each source's hashes, to drop on a change
        self._entries: dict[bytes, tuple[float, Source]] = {}
        self._keys: dict[UUID, set[bytes]] = {}
        # Entries read before this moment may have missed a notification: checked again.
        self._trusted_from = time.monotonic()
        self._generation = 0
        self._listener = ChangeListener(CHANNEL, self._on_change, self._on_reset)

    @property
    def listening(self) -> bool:
        return self._listener.listening

    async def find(self, secret: str) -> Source | None:
        """The source this secret names, or None (answered 404 whatever the reason)."""
        if SECRET_SHAPE.fullmatch(secret) is None:
            return None
        key = secret_hash(secret)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and self._trusted(entry[0], now):
            return entry[1]
        generation = self._generation
        try:
            async with self._pool.acquire() as conn:
                source = await source_by_secret(conn, secret)
        except DATABASE_AWAY as exc:
            if entry is not None and now - entry[0] < STALE_FOR_S:
                log.warning("sources: Postgres away (%s); using the last known source", exc)
                return entry[1]
            raise DatabaseUnavailable(f"cannot look sources up: {type(exc).__name__}") from None
        if source is not None and generation == self._generation:
            self._entries[key] = (now, source)
            self._keys.setdefault(source.id, set()).add(key)
        return source

    def _trusted(self, read_at: float, now: float) -> bool:
        return self.listening and read_at >= self._trusted_from and now - read_at < self._ttl

    def _on_change(self, payload: str) -> None:
        """A source, its secret or its mappings changed: what was read of it is wrong now."""
        self._generation += 1
        try:
            changed = UUID(payload)
        except ValueError:
            self._entries.clear()
            self._keys.clear()
            return
        for key in self._keys.pop(changed, set()):
            self._entries.pop(key, None)

    def _on_reset(self) -> None:
        """Notifications may have been missed: read every source again before trusting it,
        but keep what was read for the moments Postgres cannot be reached at all."""
        self._generation += 1
        self._trusted_from = time.monotonic()

    async def listen(self, dsn: str) -> None:
        """Keep the LISTEN connection open until cancelled."""
        await self._listener.run(dsn)
