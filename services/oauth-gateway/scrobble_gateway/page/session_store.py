"""The page's sessions in Postgres (table ``page_sessions``), keyed by the SHA-256 of the
cookie's value (:mod:`.sessions` says what a session is).

Signing in opens a new session and ends the one the browser brought, in one transaction
(the cookie is rotated at every sign-in, so a value planted before sign-in is worth
nothing after). Reading a live session moves its ``last_seen_at`` on, at most once a
minute, so the idle timeout counts from the last request without a write per request.
Sessions past their end are swept a day later, when someone signs in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import asyncpg

from scrobble_gateway.page import sessions
from scrobble_gateway.page.sessions import SessionTimes

# last_seen_at is moved on when it is older than this.
TOUCH_EVERY: Final = timedelta(minutes=1)
KEEP_AFTER_END: Final = timedelta(days=1)


@dataclass(frozen=True)
class PageSession:
    """A live session: whose it is, and its CSRF token (from the cookie's value)."""

    user_id: uuid.UUID
    roles: frozenset[str]
    csrf_token: str = field(repr=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


async def open_session(
    pool: asyncpg.Pool,
    *,
    user_id: uuid.UUID,
    roles: frozenset[str],
    max_age: timedelta,
    replacing: str | None,
) -> str:
    """A new session for ``user_id``; ends the session of ``replacing`` (the cookie value
    the browser brought, if any). Returns the new cookie value."""
    value = sessions.new_value()
    async with pool.acquire() as conn, conn.transaction():
        if replacing is not None:
            await conn.execute(
                "UPDATE page_sessions SET ended_at = now() WHERE id_hash = $1 AND ended_at IS NULL",
                sessions.value_digest(replacing),
            )
        await conn.execute(
            "DELETE FROM page_sessions WHERE expires_at < now() - $1::interval "
            "OR ended_at < now() - $1::interval",
            KEEP_AFTER_END,
        )
        await conn.execute(
            "INSERT INTO page_sessions (id_hash, user_id, roles, expires_at) "
            "VALUES ($1, $2, $3, now() + $4::interval)",
            sessions.value_digest(value),
            user_id,
            sorted(roles),
            max_age,
        )
    return value


async def find_session(pool: asyncpg.Pool, value: str, *, idle: timedelta) -> PageSession | None:
    """The live session of this cookie value, or None (unknown, ended, expired, idle).
    Times are the database's, like the ``now()`` the session was opened with."""
    digest = sessions.value_digest(value)
    row = await pool.fetchrow(
        "SELECT user_id, roles, created_at, last_seen_at, expires_at, ended_at, now() AS now "
        "FROM page_sessions WHERE id_hash = $1",
        digest,
    )
    if row is None:
        return None
    now: datetime = row["now"]
    times = SessionTimes(row["created_at"], row["last_seen_at"], row["expires_at"], row["ended_at"])
    if sessions.session_state(times, now, idle) != "live":
        return None
    if now - times.last_seen_at >= TOUCH_EVERY:
        await pool.execute(
            "UPDATE page_sessions SET last_seen_at = now() WHERE id_hash = $1 AND ended_at IS NULL",
            digest,
        )
    return PageSession(
        user_id=row["user_id"],
        roles=frozenset(row["roles"]),
        csrf_token=sessions.csrf_token(value),
    )


async def end_session(pool: asyncpg.Pool, value: str) -> bool:
    """End the session of this cookie value; True when one was live."""
    ended = await pool.fetchval(
        "UPDATE page_sessions SET ended_at = now() "
        "WHERE id_hash = $1 AND ended_at IS NULL RETURNING true",
        sessions.value_digest(value),
    )
    return bool(ended)
