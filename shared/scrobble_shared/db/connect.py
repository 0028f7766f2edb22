"""Opening Postgres connections and pools with a deadline and errors an operator can read."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg

from scrobble_shared.settings import redact_dsn

# Postgres answers a connection in milliseconds; one that has not in 6 s is not reachable.
CONNECT_TIMEOUT_S = 6.0
# Every statement on a pooled connection gets an answer within this or raises TimeoutError
# (transient everywhere). Without it a statement in flight when Postgres crashed can wait
# for ever on a connection that never learns it is gone (asyncpg issue 549): the chaos run
# saw every retry poller of both dispatchers stop after a Postgres kill -9, with 2,169 rows
# due and none taken for half an hour. Our longest statements (a batch's writes, a prune
# of 5,000 ids) take well under a second; a minute is a bound, not a budget.
QUERY_TIMEOUT_S = 60.0


class DatabaseUnavailable(Exception):
    """Postgres could not be reached or refused us; the message names the host, not the password."""


def describe_target(dsn: str) -> str:
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{database}"


def _unavailable(dsn: str, exc: BaseException) -> DatabaseUnavailable:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
    # asyncpg messages can quote the DSN; never let a password through.
    reason = reason.replace(dsn, redact_dsn(dsn))
    return DatabaseUnavailable(f"cannot connect to Postgres at {describe_target(dsn)}: {reason}")


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection, or :class:`DatabaseUnavailable` within about ``CONNECT_TIMEOUT_S``."""
    try:
        return await asyncio.wait_for(
            asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S + 1
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _unavailable(dsn, exc) from None


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections keep their session as it is: nothing here leaves session state
    on a pooled connection (no LISTEN, SET, advisory lock or cursor outside a transaction),
    so asyncpg's default reset query, one more round trip on *every* release, buys
    nothing. asyncpg still rolls back a transaction left open before calling this."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose first connection is made now, so a bad DSN fails at start-up, and whose
    statements never wait longer than :data:`QUERY_TIMEOUT_S` for an answer."""
    try:
        pool = await asyncio.wait_for(
            asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=QUERY_TIMEOUT_S,
                reset=_keep_session,
            ),
            CONNECT_TIMEOUT_S + 1,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _unavailable(dsn, exc) from None
    assert pool is not None
    return pool
