"""The import worker's Postgres statements: claiming jobs under a lease, saving a page
(items, cursor, progress) and finishing. Each takes an open connection; the page save runs
inside the caller's transaction, with the cursor, so a page is either wholly saved with
the cursor after it or not at all.

Lease fencing: every write of a job's progress says ``WHERE lease_owner = <me>``; a worker
whose job was taken over (it stalled past its lease) finds no row and stops, writing
nothing (:class:`LeaseLost` rolls its page back). A job cancelled meanwhile
(``scrobble_shared.db.imports.cancel_import``) is fenced the same way, and says so
(:class:`JobCancelled`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import asyncpg

from scrobble_shared.db import Conn
from scrobble_shared.db.connections import RULES_COLUMNS, connection_rules
from scrobble_shared.trackers.history import Cursor, ImportedItem
from scrobble_shared.work import ConnectionRules

# After this many claims a job that keeps killing its workers is failed, not run again.
MAX_CLAIMS: Final = 20
_JOB_COLUMNS: Final = "id, connection_id, user_id, service, cursor, since, until_at, claims"


class LeaseLost(Exception):
    """Another worker owns this job now (ours ran out); stop without writing."""


class JobCancelled(LeaseLost):
    """The job was cancelled (its owner or the operator): stop without writing."""


class Hold(StrEnum):
    """What a lease renewal found."""

    OWNED = "owned"  # still ours, renewed
    CANCELLED = "cancelled"  # cancelled since: stop
    LOST = "lost"  # another worker's now, finished, or gone with its connection: stop


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    connection_id: uuid.UUID
    user_id: uuid.UUID
    service: str
    cursor: Cursor | None
    since: datetime | None
    until: datetime
    claims: int


def _job(row: asyncpg.Record) -> Job:
    cursor = row["cursor"]
    return Job(
        id=row["id"],
        connection_id=row["connection_id"],
        user_id=row["user_id"],
        service=row["service"],
        cursor=json.loads(cursor) if isinstance(cursor, str) else cursor,
        since=row["since"],
        until=row["until_at"],
        claims=row["claims"],
    )


async def claim(conn: Conn, job_id: uuid.UUID, owner: uuid.UUID, lease: timedelta) -> Job | None:
    """Take a queued job, or a running one whose worker's lease ran out; None when it is
    finished or another worker holds it."""
    row = await conn.fetchrow(
        f"""
        UPDATE import_jobs SET state = 'running', lease_owner = $2,
            lease_until = now() + $3::interval, claims = claims + 1,
            started_at = coalesce(started_at, now()), until_at = coalesce(until_at, now()),
            updated_at = now()
        WHERE id = $1 AND (state = 'queued'
            OR (state = 'running' AND (lease_until IS NULL OR lease_until < now())))
        RETURNING {_JOB_COLUMNS}
        """,  # noqa: S608 - constant column list
        job_id,
        owner,
        lease,
    )
    return None if row is None else _job(row)


async def claimable(conn: Conn, queued_grace: timedelta, limit: int) -> list[uuid.UUID]:
    """Jobs nobody runs: running with an expired lease (their worker died), or queued for
    longer than a message takes to arrive (its message was consumed by a worker that died
    before claiming)."""
    rows = await conn.fetch(
        """
        SELECT id FROM import_jobs
        WHERE (state = 'running' AND lease_until < now())
           OR (state = 'queued' AND created_at < now() - $1::interval)
        ORDER BY created_at LIMIT $2
        """,
        queued_grace,
        limit,
    )
    return [r["id"] for r in rows]


async def renew(conn: Conn, job_id: uuid.UUID, owner: uuid.UUID, lease: timedelta) -> Hold:
    status = await conn.execute(
        "UPDATE import_jobs SET lease_until = now() + $3::interval "
        "WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        job_id,
        owner,
        lease,
    )
    if status.endswith(" 1"):
        return Hold.OWNED
    return Hold.CANCELLED if await _cancelled(conn, job_id) else Hold.LOST


async def _cancelled(conn: Conn, job_id: uuid.UUID) -> bool:
    state = await conn.fetchval("SELECT state FROM import_jobs WHERE id = $1", job_id)
    return bool(state == "cancelled")


async def _fenced(conn: Conn, job_id: uuid.UUID) -> LeaseLost:
    """Why a write of ours found no row: cancelled, or the lease is another's."""
    if await _cancelled(conn, job_id):
        return JobCancelled(f"import job {job_id} was cancelled")
    return LeaseLost(f"import job {job_id} is owned by another worker now")


async def release(conn: Conn, job_id: uuid.UUID, owner: uuid.UUID) -> None:
    """Hand a job back at shutdown: the next worker may take it at once."""
    await conn.execute(
        "UPDATE import_jobs SET lease_until = now() - interval '1 second' "
        "WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        job_id,
        owner,
    )


@dataclass(frozen=True)
class Connection:
    rules: ConnectionRules
    user_id: uuid.UUID
    token_enc: bytes | None
    user_name: str | None
    status: str
    api_url: str | None = None  # the connection's own API address, when it has one


async def connection(conn: Conn, connection_id: uuid.UUID) -> Connection | None:
    row = await conn.fetchrow(
        "SELECT id, user_id, service, enabled, scrobble_threshold_percent, sync_watch_status, "
        "sync_ratings, access_token_enc, external_user_name, status, api_url "
        "FROM connections WHERE id = $1",
        connection_id,
    )
    if row is None:
        return None
    return Connection(
        connection_rules(row),
        row["user_id"],
        row["access_token_enc"],
        row["external_user_name"],
        row["status"],
        row["api_url"],
    )


async def other_connections(conn: Conn, user_id: uuid.UUID) -> list[ConnectionRules]:
    rows = await conn.fetch(
        f"SELECT {RULES_COLUMNS} FROM connections "  # noqa: S608
        "WHERE user_id = $1 AND status = 'active'",
        user_id,
    )
    return [connection_rules(r) for r in rows]


@dataclass(frozen=True)
class NewItem:
    id: uuid.UUID
    item: ImportedItem
    content: dict[str, Any]


async def insert_items(
    conn: Conn, job: Job, items: Sequence[ImportedItem], contents: Sequence[dict[str, Any]]
) -> list[NewItem]:
    """Insert a page's items; returns those that were new (the rest were imported before)."""
    if not items:
        return []
    ids = [uuid.uuid4() for _ in items]
    rows = await conn.fetch(
        """
        INSERT INTO imported_items (id, connection_id, user_id, service, import_job_id, kind,
            content_type, item_key, title, external_ids, occurred_at, rating, progress, raw)
        SELECT u.id, $2, $3, $4, $5, u.kind, u.content_type, u.item_key, u.title,
               u.external_ids, u.occurred_at, u.rating, u.progress, u.raw
        FROM unnest($1::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[],
                    $11::timestamptz[], $12::smallint[], $13::int[], $14::jsonb[])
             AS u(id, kind, content_type, item_key, title, external_ids, occurred_at, rating,
                  progress, raw)
        ON CONFLICT (connection_id, kind, item_key, occurred_at) DO NOTHING
        RETURNING id
        """,
        ids,
        job.connection_id,
        job.user_id,
        job.service,
        job.id,
        [i.kind for i in items],
        [i.content_type for i in items],
        [i.item_key for i in items],
        [None if i.title is None else i.title.replace("\x00", "") for i in items],
        [json.dumps(dict(i.external_ids)) for i in items],
        [i.occurred_at for i in items],
        [i.rating for i in items],
        [i.progress for i in items],
        [
            json.dumps({"content": c, "source": i.raw}).replace("\\u0000", "")
            for i, c in zip(items, contents, strict=True)
        ],
    )
    inserted = {r["id"] for r in rows}
    return [
        NewItem(ids[n], items[n], dict(contents[n]))
        for n in range(len(items))
        if ids[n] in inserted
    ]


# Records of one play at the other connection: work sent there (from playback events,
# by hand or by an earlier sync) or items imported from there.
_NEARBY: Final = """
SELECT i.n, s.request -> 'content' AS content
FROM unnest($2::timestamptz[]) WITH ORDINALITY AS i(at, n)
JOIN scrobbles s ON s.connection_id = $1 AND s.kind = ANY($3::text[])
    AND s.occurred_at BETWEEN i.at - $4::interval AND i.at + $4::interval
UNION ALL
SELECT i.n, m.raw -> 'content' AS content
FROM unnest($2::timestamptz[]) WITH ORDINALITY AS i(at, n)
JOIN imported_items m ON m.connection_id = $1 AND m.kind = ANY($5::text[])
    AND m.occurred_at BETWEEN i.at - $4::interval AND i.at + $4::interval
"""


async def nearby_contents(
    conn: Conn,
    connection_id: uuid.UUID,
    moments: Sequence[datetime],
    rating: bool,
    window: timedelta,
) -> dict[int, list[dict[str, Any]]]:
    """For each moment (by position), the contents the connection already has near it."""
    if not moments:
        return {}
    kinds = ["rating"] if rating else ["scrobble", "watched"]
    imported = ["rating"] if rating else ["play"]
    rows = await conn.fetch(_NEARBY, connection_id, list(moments), kinds, window, imported)
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        content = row["content"]
        if isinstance(content, str):
            content = json.loads(content)
        if isinstance(content, dict):
            found.setdefault(int(row["n"]) - 1, []).append(content)
    return found


async def save_progress(
    conn: Conn,
    job: Job,
    owner: uuid.UUID,
    lease: timedelta,
    cursor: Cursor | None,
    seen: int,
    added: int,
) -> None:
    """The page's cursor and counts, in the page's transaction; the job is done when the
    cursor is None. Raises :class:`LeaseLost` when another worker owns the job now
    (:class:`JobCancelled` when it was cancelled): the caller's transaction rolls back."""
    status = await conn.execute(
        """
        UPDATE import_jobs SET cursor = $3::jsonb, pages_done = pages_done + 1,
            items_seen = items_seen + $4, items_added = items_added + $5,
            lease_until = now() + $6::interval, updated_at = now(),
            state = CASE WHEN $3::jsonb IS NULL THEN 'done' ELSE state END,
            finished_at = CASE WHEN $3::jsonb IS NULL THEN now() END,
            lease_owner = CASE WHEN $3::jsonb IS NULL THEN NULL ELSE lease_owner END
        WHERE id = $1 AND lease_owner = $2 AND state = 'running'
        """,
        job.id,
        owner,
        None if cursor is None else json.dumps(cursor),
        seen,
        added,
        lease,
    )
    if not status.endswith(" 1"):
        raise await _fenced(conn, job.id)
    if cursor is None:
        await conn.execute(
            "UPDATE connections SET last_sync_at = now(), last_sync_status = $2 WHERE id = $1",
            job.connection_id,
            "import done",
        )


async def save_start(conn: Conn, job: Job, owner: uuid.UUID, cursor: Cursor) -> None:
    status = await conn.execute(
        "UPDATE import_jobs SET cursor = $3::jsonb, updated_at = now() "
        "WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        job.id,
        owner,
        json.dumps(cursor),
    )
    if not status.endswith(" 1"):
        raise await _fenced(conn, job.id)


async def note_error(conn: Conn, job_id: uuid.UUID, owner: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE import_jobs SET errors = errors + 1, last_error = $3, updated_at = now() "
        "WHERE id = $1 AND lease_owner = $2",
        job_id,
        owner,
        reason[:1000],
    )


async def fail(conn: Conn, job_id: uuid.UUID, owner: uuid.UUID | None, reason: str) -> None:
    """The job ends as failed with its reason (``owner`` None: whoever holds it)."""
    await conn.execute(
        """
        UPDATE import_jobs SET state = 'failed', finished_at = now(), errors = errors + 1,
            last_error = $3, lease_owner = NULL, updated_at = now()
        WHERE id = $1 AND state IN ('queued', 'running') AND ($2::uuid IS NULL OR lease_owner = $2)
        """,
        job_id,
        owner,
        reason[:1000],
    )


async def job_states(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT state, count(*) AS n FROM import_jobs GROUP BY state")
    return {r["state"]: int(r["n"]) for r in rows}
