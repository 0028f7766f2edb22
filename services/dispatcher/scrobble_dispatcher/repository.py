"""The dispatcher's Postgres statements: claiming work, recording what became of it.

A row moves ``queued``/``retrying`` → ``sending`` (claimed, attempts + 1) → ``sent``,
``retrying`` (with ``next_attempt_at``), ``failed`` (now playing only) or ``dead``. The
claim is a conditional UPDATE, so two replicas (or a redelivered message and the retry
poller) can never send the same row at once; a row left in ``sending`` by a process that
died is claimed again once its lease has run out.

A connection whose access token no configured key opens comes back with ``unreadable``
set, never as an error: the state of many connections is read in one statement for many
deliveries at once, and one such row must not fail the others'. Every reason written here
(``last_error``, ``status_reason``, the dead letter's header) goes through
``readable_reason``: plain text, at most ``REASON_LIMIT`` characters.

A connection's ``last_sync_at`` / ``last_sync_status`` (the API's connection shape) say when
its last delivery happened and how it went: ``ok`` (sent, or the service had it already),
``retrying: <reason>`` (a call got no usable answer), ``needs reconnect: <reason>``. They are
written by the statements that record those outcomes, not by statements of their own, and
only when something changed: the status differs, or the time is more than
``SYNC_MARK_EVERY`` old. So a connection whose deliveries keep going well is rewritten about
once a minute however many calls it makes, one statement's batch of sends writes each of
its connections at most once, and the connection row is taken ``SKIP LOCKED``: a delivery
never waits for a row someone else is writing (that writer's status is as recent).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from scrobble_dispatcher.clients.base import readable_reason
from scrobble_dispatcher.coalesce import Coalescer
from scrobble_dispatcher.tokens import NewTokens, TokenState
from scrobble_shared.crypto import TokenCipher, TokenDecryptError
from scrobble_shared.db import Conn
from scrobble_shared.outbox import OutboxMessage, insert_outbox

# How long a claimed row may stay in 'sending' before another process may take it over.
SENDING_LEASE: Final = timedelta(minutes=2)

_CLAIMED_RETURNING: Final = (
    "s.id, s.connection_id, s.service, s.kind, s.attempts, s.request, s.created_at"
)
# Statements on many rows lock them in id order (``ORDER BY id FOR UPDATE`` first): two
# replicas working on overlapping rows (after a rebalance, a lease taken over) then wait
# for each other instead of deadlocking.

# Listing and replaying dead work moved to scrobble_shared (the gateway uses them too).

# How stale last_sync_at may get before an unchanged status is written again.
SYNC_MARK_EVERY: Final = timedelta(minutes=1)
SYNC_OK: Final = "ok"


def retrying_status(reason: str) -> str:
    """``last_sync_status`` after a call that will be tried again."""
    return f"retrying: {readable_reason(reason)}"


def reconnect_status(reason: str) -> str:
    """``last_sync_status`` once the service refused the connection's tokens."""
    return f"needs reconnect: {readable_reason(reason)}"


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    connection_id: uuid.UUID
    service: str
    kind: str
    attempts: int
    request: dict[str, Any]
    queued_at: datetime  # when the row was written: how long it has waited in all


def _claimed(row: Any) -> Claimed:
    request = row["request"]
    return Claimed(
        id=row["id"],
        connection_id=row["connection_id"],
        service=row["service"],
        kind=row["kind"],
        attempts=row["attempts"],
        request=request if isinstance(request, dict) else json.loads(request),
        queued_at=row["created_at"],
    )


async def claim(conn: Conn, scrobble_id: uuid.UUID) -> Claimed | None:
    """Take one row for sending, if it is due and nobody has it."""
    [claimed] = await claim_many(conn, [scrobble_id])
    return claimed


async def claim_due(
    conn: Conn, service: str, connections: int, per_connection: int
) -> list[Claimed]:
    """Take rows whose retry time has come, fairly: at most ``per_connection`` of each
    connection (its oldest, in order), for the ``connections`` whose oldest due row waited
    longest; and rows whose sender died (lease run out), up to ``connections`` of them.
    Grouped by connection, each in order. One connection's backlog thus takes one call's
    worth per round, not the whole round. Cost: one index probe per connection with rows
    waiting (``scrobbles_waiting_idx``), not a read of every due row."""
    rows = await conn.fetch(
        f"""
        WITH RECURSIVE waiting AS (
            -- Each connection with rows waiting, one probe each (a skip scan).
            (SELECT connection_id FROM scrobbles
             WHERE service = $1 AND status = 'retrying' ORDER BY connection_id LIMIT 1)
            UNION ALL
            SELECT (SELECT s.connection_id FROM scrobbles AS s
                    WHERE s.service = $1 AND s.status = 'retrying'
                    AND s.connection_id > w.connection_id ORDER BY s.connection_id LIMIT 1)
            FROM waiting AS w WHERE w.connection_id IS NOT NULL
        ), heads AS (
            SELECT w.connection_id, head.next_attempt_at
            FROM waiting AS w CROSS JOIN LATERAL (
                SELECT s.next_attempt_at FROM scrobbles AS s
                WHERE s.service = $1 AND s.status = 'retrying'
                AND s.connection_id = w.connection_id
                ORDER BY s.next_attempt_at LIMIT 1) AS head
            WHERE head.next_attempt_at <= now()
            ORDER BY head.next_attempt_at, w.connection_id LIMIT $3
        ), picked AS (
            SELECT oldest.id FROM heads CROSS JOIN LATERAL (
                SELECT s.id FROM scrobbles AS s
                WHERE s.service = $1 AND s.status = 'retrying'
                AND s.connection_id = heads.connection_id AND s.next_attempt_at <= now()
                ORDER BY s.next_attempt_at, s.occurred_at, s.id LIMIT $4) AS oldest
            UNION ALL
            (SELECT id FROM scrobbles
             WHERE service = $1 AND status = 'sending' AND updated_at < now() - $2::interval
             ORDER BY updated_at LIMIT $3)
        ), claimed AS (
            UPDATE scrobbles AS s
            SET status = 'sending', attempts = attempts + 1, updated_at = now()
            -- Arrays, so that the rows are found by their ids, however many.
            WHERE s.id = ANY(ARRAY(
                SELECT id FROM scrobbles
                WHERE id = ANY(ARRAY(SELECT id FROM picked)) AND (
                    (status = 'retrying' AND next_attempt_at <= now())
                    OR (status = 'sending' AND updated_at < now() - $2::interval))
                FOR UPDATE SKIP LOCKED))
            RETURNING {_CLAIMED_RETURNING}, s.next_attempt_at, s.occurred_at
        )
        SELECT * FROM claimed
        ORDER BY connection_id, next_attempt_at NULLS FIRST, occurred_at, id
        """,  # noqa: S608 - constant column list
        service,
        SENDING_LEASE,
        connections,
        per_connection,
    )
    return [_claimed(r) for r in rows]


async def claim_many(conn: Conn, scrobble_ids: Sequence[uuid.UUID]) -> list[Claimed | None]:
    """:func:`claim` for several rows in one statement; per id, in order. An id named
    twice is claimed once: the first naming gets the row, the later ones None."""
    rows = await conn.fetch(
        f"""
        WITH mine AS (SELECT id FROM scrobbles WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE)
        UPDATE scrobbles AS s
        SET status = 'sending', attempts = attempts + 1, updated_at = now()
        FROM mine WHERE s.id = mine.id AND (
            (s.status IN ('queued', 'retrying')
             AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= now()))
            OR (s.status = 'sending' AND s.updated_at < now() - $2::interval))
        RETURNING {_CLAIMED_RETURNING}
        """,  # noqa: S608 - constant column list
        list(scrobble_ids),
        SENDING_LEASE,
    )
    found = {row["id"]: _claimed(row) for row in rows}
    return [found.pop(scrobble_id, None) for scrobble_id in scrobble_ids]


# Work due within this long is waiting its turn (put back, paced): a connection's new work
# goes behind it. Work due later (a failure's backoff, a reconnect) holds nothing back.
WAITING_HORIZON: Final = timedelta(minutes=1)


async def waiting_connections(
    conn: Conn, service: str, connection_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of ``connection_ids`` with work waiting its turn (due within the horizon)."""
    rows = await conn.fetch(
        "SELECT DISTINCT connection_id FROM scrobbles WHERE service = $1 AND status = 'retrying' "
        "AND next_attempt_at <= now() + $2::interval AND connection_id = ANY($3::uuid[])",
        service,
        WAITING_HORIZON,
        list(set(connection_ids)),
    )
    return {row["connection_id"] for row in rows}


async def put_back(conn: Conn, scrobble_ids: Sequence[uuid.UUID], reason: str) -> None:
    """Leave queued rows to the due-work poller, unclaimed and without an attempt: due at
    once, but not before their connection's work already waiting its turn (due within the
    horizon), so a connection's work keeps its order. Rows no longer queued (taken
    meanwhile) are left as they are."""
    await conn.execute(
        "UPDATE scrobbles AS s SET status = 'retrying', last_error = $2, updated_at = now(), "
        "next_attempt_at = greatest(now(), (SELECT max(w.next_attempt_at) FROM scrobbles AS w "
        "WHERE w.service = s.service AND w.status = 'retrying' "
        "AND w.next_attempt_at <= now() + $3::interval AND w.connection_id = s.connection_id)) "
        "WHERE s.id = ANY($1::uuid[]) AND s.status = 'queued'",
        list(scrobble_ids),
        readable_reason(reason),
        WAITING_HORIZON,
    )


@dataclass(frozen=True)
class ConnectionState:
    """A connection as a delivery needs it: the access token decrypted (never in a repr),
    or ``unreadable`` when one is stored but no configured key opens it."""

    enabled: bool
    status: str
    token: str | None = field(repr=False)
    tokens: TokenState
    unreadable: bool = False
    status_reason: str | None = None
    account_name: str | None = None  # the account's name at the service, when known


async def connection_state(
    conn: Conn, cipher: TokenCipher, connection_id: uuid.UUID
) -> ConnectionState | None:
    row = await conn.fetchrow(
        f"SELECT {_STATE_COLUMNS} FROM connections WHERE id = $1",  # noqa: S608
        connection_id,
    )
    return None if row is None else _state(cipher, row)


_STATE_COLUMNS: Final = (
    "enabled, status, status_reason, access_token_enc, external_user_name, "
    "refresh_token_enc IS NOT NULL AS has_refresh, "
    "token_expires_at, token_version, refresh_started_at, refresh_from_version"
)


def _state(cipher: TokenCipher, row: Any) -> ConnectionState:
    encrypted = row["access_token_enc"]
    token, unreadable = None, False
    if encrypted is not None:
        try:
            token = cipher.decrypt(encrypted)
        except TokenDecryptError:
            unreadable = True
    return ConnectionState(
        enabled=row["enabled"],
        status=row["status"],
        token=token,
        unreadable=unreadable,
        status_reason=row["status_reason"],
        account_name=row["external_user_name"],
        tokens=TokenState(
            version=row["token_version"],
            expires_at=row["token_expires_at"],
            has_refresh_token=row["has_refresh"],
            refresh_started_at=row["refresh_started_at"],
            refresh_from_version=row["refresh_from_version"],
        ),
    )


async def connection_states(
    conn: Conn, cipher: TokenCipher, connection_ids: Sequence[uuid.UUID]
) -> list[ConnectionState | None]:
    """:func:`connection_state` for several connections in one statement; per id, in order."""
    rows = await conn.fetch(
        f"SELECT id, {_STATE_COLUMNS} FROM connections WHERE id = ANY($1::uuid[])",  # noqa: S608
        list(set(connection_ids)),
    )
    found = {row["id"]: _state(cipher, row) for row in rows}
    return [found.get(connection_id) for connection_id in connection_ids]


async def db_now(conn: Conn) -> datetime:
    """Postgres's clock: the one every replica's refresh lease is measured on."""
    moment: datetime = await conn.fetchval("SELECT now()")
    return moment


async def begin_refresh(
    conn: Conn,
    cipher: TokenCipher,
    connection_id: uuid.UUID,
    version: int,
    lease: timedelta,
) -> str | None:
    """Mark a refresh in flight from ``version`` (its own committed statement, before the
    token endpoint is called) and hand back the refresh token to spend. None when another
    process holds a live mark, the tokens changed, or the connection is not active.
    :class:`TokenDecryptError` when no configured key opens the refresh token (the mark is
    then set: ``connections.mark_tokens_unreadable`` clears it)."""
    encrypted = await conn.fetchval(
        "UPDATE connections SET refresh_started_at = now(), refresh_from_version = token_version, "
        "updated_at = now() "
        "WHERE id = $1 AND token_version = $2 AND status = 'active' "
        "AND refresh_token_enc IS NOT NULL AND (refresh_started_at IS NULL "
        "OR refresh_from_version <> token_version OR refresh_started_at < now() - $3::interval) "
        "RETURNING refresh_token_enc",
        connection_id,
        version,
        lease,
    )
    return None if encrypted is None else cipher.decrypt(encrypted)


async def persist_refreshed_tokens(
    conn: Conn,
    cipher: TokenCipher,
    connection_id: uuid.UUID,
    from_version: int,
    new: NewTokens,
) -> int | None:
    """Store the new pair (encrypted) if the tokens are still those of ``from_version``, and
    clear the in-flight mark, in one statement. Returns the new version, None when the
    compare-and-set lost (the tokens were replaced meanwhile, e.g. by a reconnect)."""
    version: int | None = await conn.fetchval(
        "UPDATE connections SET access_token_enc = $3, refresh_token_enc = $4, "
        "token_expires_at = $5, token_version = token_version + 1, "
        "refresh_started_at = NULL, refresh_from_version = NULL, updated_at = now() "
        "WHERE id = $1 AND token_version = $2 RETURNING token_version",
        connection_id,
        from_version,
        cipher.encrypt(new.access_token),
        cipher.encrypt(new.refresh_token),
        new.expires_at,
    )
    return version


async def end_refresh(conn: Conn, connection_id: uuid.UUID, from_version: int) -> None:
    """Clear the in-flight mark when the refresh token is known to be unspent (429)."""
    await conn.execute(
        "UPDATE connections SET refresh_started_at = NULL, refresh_from_version = NULL, "
        "updated_at = now() WHERE id = $1 AND refresh_from_version = $2",
        connection_id,
        from_version,
    )


async def refresh_refused(
    conn: Conn, connection_id: uuid.UUID, from_version: int, reason: str
) -> None:
    """The refresh failed for good: needs reconnect, with the reason, and no mark left.
    Only while the tokens are still those the refresh started from."""
    await conn.execute(
        "UPDATE connections SET status = 'needs_reconnect', status_reason = $3, "
        "refresh_started_at = NULL, refresh_from_version = NULL, updated_at = now(), "
        "last_sync_at = now(), last_sync_status = $4 "
        "WHERE id = $1 AND token_version = $2",
        connection_id,
        from_version,
        readable_reason(reason),
        reconnect_status(reason),
    )


async def record_sent_many(conn: Conn, sent: Sequence[tuple[uuid.UUID, int | None]]) -> list[None]:
    """Sent: the rows (id, HTTP status), and their connections' sync status ``ok`` (when it
    changed, see the module docstring), in one statement."""
    await conn.execute(
        "WITH mine AS (SELECT id FROM scrobbles WHERE id = ANY($1::uuid[]) ORDER BY id "
        "FOR UPDATE), "
        "done AS (UPDATE scrobbles AS s SET status = 'sent', sent_at = now(), updated_at = now(), "
        "last_http_status = v.status, next_attempt_at = NULL "
        "FROM unnest($1::uuid[], $2::int[]) AS v(id, status), mine "
        "WHERE s.id = v.id AND mine.id = v.id RETURNING s.connection_id), "
        # Its connections whose status is not ok yet, or is but stale (module docstring).
        "synced AS (SELECT c.id FROM connections c WHERE c.id IN "
        "(SELECT connection_id FROM done) AND (c.last_sync_status <> $3 "
        "OR c.last_sync_at IS NULL OR c.last_sync_at < now() - $4::interval) "
        "ORDER BY c.id FOR UPDATE SKIP LOCKED) "
        "UPDATE connections AS c SET last_sync_at = now(), last_sync_status = $3 "
        "FROM synced WHERE c.id = synced.id",
        [scrobble_id for scrobble_id, _ in sent],
        [status for _, status in sent],
        SYNC_OK,
        SYNC_MARK_EVERY,
    )
    return [None] * len(sent)


async def record_retry(
    conn: Conn,
    scrobble_id: uuid.UUID,
    at: datetime,
    reason: str,
    status: int | None,
    *,
    count_attempt: bool = True,
) -> None:
    """Schedule another try; ``count_attempt=False`` when nothing was sent (pacing, waits).
    A counted attempt was a call: its connection's sync status says ``retrying`` (when it
    changed, see the module docstring), in the same statement."""
    await conn.execute(
        "WITH retried AS (UPDATE scrobbles SET status = 'retrying', next_attempt_at = $2, "
        "last_error = $3, last_http_status = $4, updated_at = now(), "
        "attempts = CASE WHEN $5 THEN attempts ELSE greatest(attempts - 1, 0) END "
        "WHERE id = $1 RETURNING connection_id), "
        "synced AS (SELECT c.id FROM connections c WHERE $5 AND c.id IN "
        "(SELECT connection_id FROM retried) AND (c.last_sync_status <> $6 "
        "OR c.last_sync_at IS NULL OR c.last_sync_at < now() - $7::interval) "
        "FOR UPDATE SKIP LOCKED) "
        "UPDATE connections AS c SET last_sync_at = now(), last_sync_status = $6 "
        "FROM synced WHERE c.id = synced.id",
        scrobble_id,
        at,
        readable_reason(reason),
        status,
        count_attempt,
        retrying_status(reason),
        SYNC_MARK_EVERY,
    )


async def put_off(conn: Conn, scrobble_ids: Sequence[uuid.UUID], at: datetime, reason: str) -> None:
    """Claimed rows that were not sent (their pacing slot or turn is further away): back
    until ``at``, the claim's attempt given back; in one statement (a Last.fm batch is 50
    rows). The same as :func:`record_retry` with ``count_attempt=False`` for each."""
    await conn.execute(
        "UPDATE scrobbles SET status = 'retrying', next_attempt_at = $2, last_error = $3, "
        "last_http_status = NULL, updated_at = now(), attempts = greatest(attempts - 1, 0) "
        "WHERE id = ANY($1::uuid[])",
        list(scrobble_ids),
        at,
        readable_reason(reason),
    )


async def record_failed_many(
    conn: Conn, failed: Sequence[tuple[uuid.UUID, str, int | None]]
) -> list[None]:
    """Best-effort work (now playing) that did not go through, never retried, never dead:
    the rows (id, reason, HTTP status), in one statement."""
    await conn.execute(
        "WITH mine AS (SELECT id FROM scrobbles WHERE id = ANY($1::uuid[]) ORDER BY id "
        "FOR UPDATE) "
        "UPDATE scrobbles AS s SET status = 'failed', last_error = v.reason, "
        "last_http_status = v.status, updated_at = now(), next_attempt_at = NULL "
        "FROM unnest($1::uuid[], $2::text[], $3::int[]) AS v(id, reason, status), mine "
        "WHERE s.id = v.id AND mine.id = v.id",
        [scrobble_id for scrobble_id, _, _ in failed],
        # Reasons may quote a service's answer: plain and short (and Postgres text takes
        # no NUL, which readable_reason drops with every other control character).
        [readable_reason(reason) for _, reason, _ in failed],
        [status for _, _, status in failed],
    )
    return [None] * len(failed)


async def record_dead(
    conn: Conn,
    claimed: Claimed,
    reason: str,
    status: int | None,
    dead_letter_topic: str,
) -> list[int]:
    """Dead in Postgres and, through the outbox, on the dead-letter topic, in one transaction.
    Returns the outbox ids to publish."""
    reason = readable_reason(reason)
    async with conn.transaction():
        await conn.execute(
            "UPDATE scrobbles SET status = 'dead', last_error = $2, last_http_status = $3, "
            "updated_at = now(), next_attempt_at = NULL WHERE id = $1",
            claimed.id,
            reason,
            status,
        )
        message = OutboxMessage(
            topic=dead_letter_topic,
            key=str(claimed.connection_id).encode(),
            value=json.dumps(claimed.request).encode(),
            headers={
                "error.reason": reason,
                "error.http_status": "" if status is None else str(status),
                "attempts": str(claimed.attempts),
            },
            message_id=f"dead:{claimed.id}:{claimed.attempts}",
        )
        return await insert_outbox(conn, [message])


async def mark_needs_reconnect(conn: Conn, connection_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE connections SET status = 'needs_reconnect', status_reason = $2, "
        "updated_at = now(), last_sync_at = now(), last_sync_status = $3 WHERE id = $1",
        connection_id,
        readable_reason(reason),
        reconnect_status(reason),
    )


class Coalesced:
    """The statements every delivery runs (claim, connection state, sent, failed), each
    call joined with those made while the previous one was out (``coalesce.py``): under
    load one round trip serves many deliveries, idle a call goes at once. Same answers as
    the one-row functions above."""

    def __init__(self, pool: asyncpg.Pool, cipher: TokenCipher) -> None:
        self._pool = pool
        self._cipher = cipher
        self.claim: Coalescer[uuid.UUID, Claimed | None] = Coalescer(self._claim)
        self.state: Coalescer[uuid.UUID, ConnectionState | None] = Coalescer(self._states)
        self.sent: Coalescer[tuple[uuid.UUID, int | None], None] = Coalescer(self._sent)
        self.failed: Coalescer[tuple[uuid.UUID, str, int | None], None] = Coalescer(self._failed)

    async def _claim(self, ids: Sequence[uuid.UUID]) -> list[Claimed | None]:
        async with self._pool.acquire() as conn:
            return await claim_many(conn, ids)

    async def _states(self, ids: Sequence[uuid.UUID]) -> list[ConnectionState | None]:
        async with self._pool.acquire() as conn:
            return await connection_states(conn, self._cipher, ids)

    async def _sent(self, sent: Sequence[tuple[uuid.UUID, int | None]]) -> list[None]:
        async with self._pool.acquire() as conn:
            return await record_sent_many(conn, sent)

    async def _failed(self, failed: Sequence[tuple[uuid.UUID, str, int | None]]) -> list[None]:
        async with self._pool.acquire() as conn:
            return await record_failed_many(conn, failed)
