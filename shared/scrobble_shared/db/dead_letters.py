"""Dead scrobbles across users: listing and requeueing them.

Used by the dispatcher's operator commands (``scrobble dlq list|replay``), by the
gateway's admin routes, and by its routes for a user's own dead work. A dead row stays in
``scrobbles`` with its last error; replaying makes it due now with its attempts from zero,
and the dispatcher's retry poller sends it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from scrobble_shared.db import Conn


@dataclass(frozen=True)
class DeadScrobble:
    id: uuid.UUID
    connection_id: uuid.UUID
    service: str
    kind: str
    attempts: int
    last_error: str
    last_http_status: int | None
    updated_at: datetime


async def list_dead(
    conn: Conn, service: str | None = None, limit: int = 1000
) -> list[DeadScrobble]:
    rows = await conn.fetch(
        "SELECT id, connection_id, service, kind, attempts, last_error, last_http_status, "
        "updated_at FROM scrobbles WHERE status = 'dead' AND ($1::text IS NULL OR service = $1) "
        "ORDER BY updated_at LIMIT $2",
        service,
        limit,
    )
    return [DeadScrobble(**dict(r)) for r in rows]


async def replay_dead(
    conn: Conn,
    service: str | None = None,
    scrobble_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> int:
    """Requeue dead work (of one user when ``user_id`` is given): due now, attempts from
    zero; the retry poller sends it."""
    result = await conn.execute(
        "UPDATE scrobbles SET status = 'retrying', attempts = 0, next_attempt_at = now(), "
        "updated_at = now() WHERE status = 'dead' AND ($1::text IS NULL OR service = $1) "
        "AND ($2::uuid IS NULL OR id = $2) AND ($3::uuid IS NULL OR user_id = $3)",
        service,
        scrobble_id,
        user_id,
    )
    return int(result.split()[-1])
