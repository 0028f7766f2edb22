"""History import routes: ``POST /import/{service}`` starts a job for the caller's
connection, ``GET /import/jobs`` and ``GET /import/jobs/{id}`` show how it goes, and
``POST /import/jobs/{id}/cancel`` stops it (``scrobble_shared.db.imports``: what was
imported stays; the worker stops within seconds).

The job runs in the dispatcher (``scrobble_dispatcher.imports``), not in the request: the
route writes the ``import_jobs`` row and an outbox message to ``<prefix>imports`` (keyed
by connection id) in one transaction, publishes it, and answers 202 with the job. At most
one job per connection is queued or running (a unique index): asking again while one is
answers 200 with that job. A new job reads only what is newer than the last finished one
(its ``since``), unless the body says ``{"full": true}``.

A user starts at most ``GATEWAY_MAX_IMPORT_JOBS_PER_DAY`` jobs in any 24 hours, counted in
Postgres under a lock of the user's, so exact across replicas; one more is a 429 naming
the ``imports`` policy, with ``Retry-After`` until the oldest of them is a day old. Asking
again while a job runs answers that job and counts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Final

import asyncpg
from aiohttp import web
from pydantic import StrictBool

from scrobble_gateway.keys import POOL, RELAY, SETTINGS, caller
from scrobble_gateway.problems import problem
from scrobble_gateway.quota_middleware import quota_exceeded
from scrobble_gateway.repository import Db, Row, page_end
from scrobble_gateway.routing import API_BASE as BASE
from scrobble_gateway.schemas import _Body
from scrobble_gateway.validation import (
    check_known_params,
    parse_body,
    parse_cursor,
    parse_limit,
    query_uuid,
)
from scrobble_gateway.views import json_response, page
from scrobble_shared.db import Conn
from scrobble_shared.db.imports import cancel_import
from scrobble_shared.import_message import IMPORT_KIND, ImportMessage
from scrobble_shared.outbox import OutboxMessage, insert_outbox
from scrobble_shared.trackers.registry import SERVICES

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S: Final = 10.0
JOB_COLUMNS: Final = (
    "id, connection_id, service, state, pages_done, items_seen, items_added, errors, "
    "last_error, since, until_at, created_at, started_at, finished_at, updated_at"
)

DAY_S: Final = 86_400

routes = web.RouteTableDef()


class ImportsSpent(Exception):
    """The user started ``per_day`` imports in the last day; one more in ``retry_after_s``."""

    def __init__(self, per_day: int, retry_after_s: int) -> None:
        super().__init__(f"{per_day} imports a day")
        self.per_day = per_day
        self.retry_after_s = retry_after_s

    def response(self) -> web.Response:
        answer = quota_exceeded(
            "imports",
            f"at most {self.per_day} imports a day; try again in {self.retry_after_s} s",
            self.retry_after_s,
        )
        answer.headers.add("RateLimit-Policy", f'"imports";q={self.per_day};w={DAY_S}')
        answer.headers.add("RateLimit", f'"imports";r=0;t={self.retry_after_s}')
        return answer


class ImportStart(_Body):
    """``POST /import/{service}``: ``full`` reads the whole history again, not only what
    is newer than the last finished import."""

    full: StrictBool | None = None


def job_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "connection_id": row["connection_id"],
        "service": row["service"],
        "state": row["state"],
        "pages_done": row["pages_done"],
        "items_seen": row["items_seen"],
        "items_added": row["items_added"],
        "errors": row["errors"],
        "last_error": row["last_error"],
        "since": row["since"],
        "until": row["until_at"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "updated_at": row["updated_at"],
    }


def _imports_topic(request: web.Request) -> str:
    return f"{request.app[SETTINGS].scrobble_topic_prefix}imports"


async def _active_job(conn: Conn, connection_id: uuid.UUID) -> Row | None:
    row = await conn.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM import_jobs WHERE connection_id = $1 "  # noqa: S608
        "AND state IN ('queued', 'running')",
        connection_id,
    )
    return None if row is None else dict(row)


async def _wait_for_another_import(conn: Conn, user_id: uuid.UUID, per_day: int) -> int | None:
    """Seconds until the user may start one more import; None when they may now. One
    statement on the index of the user's jobs by time (import_jobs_user_idx)."""
    wait: int | None = await conn.fetchval(
        """
        SELECT ceil(extract(epoch FROM min(created_at) + interval '1 day' - now()))::int
        FROM (SELECT created_at FROM import_jobs
              WHERE user_id = $1 AND created_at > now() - interval '1 day'
              ORDER BY created_at DESC LIMIT $2) AS latest
        HAVING count(*) >= $2
        """,
        user_id,
        per_day,
    )
    return None if wait is None else max(1, wait)


async def _create(
    conn: Conn, connection: Row, full: bool, topic: str, per_day: int
) -> tuple[Row, list[int], bool]:
    """The active job of the connection, or a new one with its outbox message, or
    :class:`ImportsSpent` when the user started their imports of the day."""
    async with conn.transaction():
        # One start of the user's at a time, so two at once cannot both take the last one.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"import-starts:{connection['user_id']}",
        )
        active = await _active_job(conn, connection["id"])
        if active is not None:
            return active, [], False
        wait = await _wait_for_another_import(conn, connection["user_id"], per_day)
        if wait is not None:
            raise ImportsSpent(per_day, wait)
        since = None
        if not full:
            since = await conn.fetchval(
                "SELECT max(until_at) FROM import_jobs WHERE connection_id = $1 AND state = 'done'",
                connection["id"],
            )
        row = await conn.fetchrow(
            f"""
            INSERT INTO import_jobs (connection_id, user_id, service, since)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (connection_id) WHERE state IN ('queued', 'running') DO NOTHING
            RETURNING {JOB_COLUMNS}
            """,  # noqa: S608 - constant column list
            connection["id"],
            connection["user_id"],
            connection["service"],
            since,
        )
        if row is None:  # started without the lock (a gateway of an older version)
            active = await _active_job(conn, connection["id"])
            assert active is not None
            return active, [], False
        start = ImportMessage(
            job_id=row["id"],
            connection_id=row["connection_id"],
            user_id=connection["user_id"],
            service=row["service"],
        )
        message = OutboxMessage(
            topic=topic,
            key=start.key,
            value=start.encode(),
            headers={"kind": IMPORT_KIND},
            message_id=start.message_id,
        )
        ids = await insert_outbox(conn, [message])
    return dict(row), ids, True


@routes.post(f"{BASE}/import/{{service}}")
async def start_import(request: web.Request) -> web.Response:
    name = request.match_info["service"]
    body = await parse_body(request, ImportStart, optional=True)
    if name not in SERVICES:
        return problem(404, "Unknown service", f"use one of {', '.join(SERVICES)}")
    app, user_id = request.app, caller(request).user_id
    connection = await app[POOL].fetchrow(
        "SELECT id, user_id, service, enabled, status FROM connections "
        "WHERE user_id = $1 AND service = $2",
        user_id,
        name,
    )
    if connection is None:
        return problem(404, "Not Found", f"no {name} connection")
    if not connection["enabled"] or connection["status"] != "active":
        why = "disabled" if not connection["enabled"] else "in need of reconnecting"
        return problem(409, "Connection not usable", f"the {name} connection is {why}")
    try:
        async with app[POOL].acquire() as conn:
            row, outbox_ids, created = await _create(
                conn,
                dict(connection),
                bool(body.full),
                _imports_topic(request),
                app[SETTINGS].gateway_max_import_jobs_per_day,
            )
    except asyncpg.UniqueViolationError:  # a concurrent request made it first
        return problem(409, "Import in progress", "try again to see the running job")
    except ImportsSpent as exc:
        return exc.response()
    if outbox_ids:
        try:
            await asyncio.wait_for(app[RELAY].publish(outbox_ids), PUBLISH_TIMEOUT_S)
        except Exception as exc:  # the outbox row waits for the relay's recovery
            log.warning("import: publishing deferred to outbox recovery (%s)", type(exc).__name__)
    return json_response(job_view(row), status=202 if created else 200)


async def _jobs_page(
    db: Db, user_id: uuid.UUID, connection_id: uuid.UUID | None, limit: int, after: Any
) -> list[Row]:
    clause, extra = "", []
    if after is not None:
        clause, extra = " AND (created_at, id) < ($4, $5)", [after.at, after.id]
    records = await db.fetch(
        f"SELECT {JOB_COLUMNS} FROM import_jobs "  # noqa: S608 - constant columns and clause
        f"WHERE user_id = $1 AND ($2::uuid IS NULL OR connection_id = $2){clause} "
        "ORDER BY created_at DESC, id DESC LIMIT $3",
        user_id,
        connection_id,
        limit + 1,
        *extra,
    )
    return [dict(r) for r in records]


@routes.get(f"{BASE}/import/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    check_known_params(request.query, {"connection_id", "limit", "cursor"})
    limit, after = parse_limit(request.query), parse_cursor(request)
    connection_id = query_uuid(request, "connection_id")
    user_id = caller(request).user_id
    if connection_id is not None:
        owned = await request.app[POOL].fetchval(
            "SELECT true FROM connections WHERE id = $1 AND user_id = $2", connection_id, user_id
        )
        if not owned:
            return problem(404, "Not Found", "no such connection")
    rows = await _jobs_page(request.app[POOL], user_id, connection_id, limit, after)
    rows, next_position = page_end(rows, limit, "created_at")
    return json_response(page(request, [job_view(r) for r in rows], next_position))


def _job_id(request: web.Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        return None


async def _own_job(db: Db, job_id: uuid.UUID, user_id: uuid.UUID) -> Row | None:
    row = await db.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM import_jobs WHERE id = $1 AND user_id = $2",  # noqa: S608
        job_id,
        user_id,
    )
    return None if row is None else dict(row)


@routes.get(f"{BASE}/import/jobs/{{id}}")
async def get_job(request: web.Request) -> web.Response:
    check_known_params(request.query, set())
    job_id = _job_id(request)
    row = (
        None
        if job_id is None
        else await _own_job(request.app[POOL], job_id, caller(request).user_id)
    )
    if row is None:
        return problem(404, "Not Found", "no such import job")
    return json_response(job_view(row))


@routes.post(f"{BASE}/import/jobs/{{id}}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel one of the caller's queued or running jobs: 200 with the job as it stands
    (also when it was cancelled before); 409 when it had finished already; another
    user's job is a 404."""
    check_known_params(request.query, set())
    job_id, user_id = _job_id(request), caller(request).user_id
    if job_id is None:
        return problem(404, "Not Found", "no such import job")
    async with request.app[POOL].acquire() as conn:
        result = await cancel_import(conn, job_id, user_id)
        row = await _own_job(conn, job_id, user_id)
    if result == "not_found" or row is None:
        return problem(404, "Not Found", "no such import job")
    if result == "finished":
        return problem(409, "Import finished", f"the import is {row['state']} already")
    if result == "cancelled":
        log.info("import %s cancelled by its owner", job_id)
    return json_response(job_view(row))


__all__ = ["ImportStart", "job_view", "routes"]
