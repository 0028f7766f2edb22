"""Each user's connections, cached in the process and dropped when Postgres says they changed.

A trigger on ``connections`` sends ``NOTIFY connections_changed, '<user id>'``; the cache
listens on a connection of its own. When that connection is lost a notification may have
been missed, so the whole cache is dropped and the listener reconnects. Entries also age
out after ``ttl`` as a last line of defence.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from scrobble_ingest import store
from scrobble_shared.db import Conn
from scrobble_shared.db.listening import ChangeListener
from scrobble_shared.work import ConnectionRules

CHANNEL = "connections_changed"


class ConnectionCache:
    def __init__(self, ttl_s: float = 300.0) -> None:
        self._ttl = ttl_s
        self._entries: dict[uuid.UUID, tuple[float, list[ConnectionRules]]] = {}
        self._listener = ChangeListener(CHANNEL, self._on_change, self.invalidate)

    async def lookup(
        self, conn: Conn, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ConnectionRules]]:
        now = time.monotonic()
        found: dict[uuid.UUID, list[ConnectionRules]] = {}
        missing: list[uuid.UUID] = []
        # Without a live LISTEN a change could go unheard: read through until it is back.
        listening = self._listener.listening
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

    def _on_change(self, payload: str) -> None:
        try:
            self.invalidate(uuid.UUID(payload))
        except ValueError:
            self.invalidate()

    async def listen(self, dsn: str) -> None:
        """Keep a LISTEN connection open until cancelled, reconnecting when it drops."""
        await self._listener.run(dsn)
