"""The user and admin routes under ``/api/v1/scrobble`` (CONTRACTS section 4), except the
connect flows (``connect/``). Handlers parse, call the repository or the queue core, and
shape the answer; every query is scoped to the caller, so another user's id is a 404
exactly like a missing one."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Final

from aiohttp import web

from scrobble_gateway import repository as repo
from scrobble_gateway.keys import CIPHER, POOL, RELAY, SETTINGS, caller
from scrobble_gateway.problems import problem
from scrobble_gateway.queue import (
    InvalidScrobble,
    QueueRefused,
    manual_event,
    manual_work,
    store_manual_work,
    utc_now,
)
from scrobble_gateway.revoking import revoke_quietly
from scrobble_gateway.routing import API_BASE as BASE
from scrobble_gateway.schemas import ConnectionSettings, QueueBody, ReplayBody
from scrobble_gateway.validation import (
    InvalidRequest,
    check_known_params,
    field_error,
    parse_body,
    parse_cursor,
    parse_limit,
    query_uuid,
)
from scrobble_gateway.views import (
    connection_view,
    dead_letter_view,
    history_view,
    imported_view,
    json_response,
    page,
)
from scrobble_shared.db.connections import connection_rules
from scrobble_shared.db.dead_letters import replay_dead
from scrobble_shared.trackers.registry import SERVICES
from scrobble_shared.work_message import WorkTopics

log = logging.getLogger(__name__)

# A publish that does not finish in this time is left to the outbox recovery.
PUBLISH_TIMEOUT_S: Final = 10.0

routes = web.RouteTableDef()


def _not_found(what: str = "connection") -> web.Response:
    return problem(404, "Not Found", f"no such {what}")


def _path_id(request: web.Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        return None


def _query_choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    text = request.query.get(name)
    if text is not None and text not in allowed:
        raise field_error(name, f"must be one of {', '.join(allowed)}")
    return text


async def _owned_connection_filter(request: web.Request) -> uuid.UUID | None:
    """The ``connection_id`` filter, which must name one of the caller's connections."""
    connection_id = query_uuid(request, "connection_id")
    if connection_id is not None:
        found = await repo.get_connection(request.app[POOL], caller(request).user_id, connection_id)
        if found is None:
            raise web.HTTPNotFound(text="no such connection")
    return connection_id


# --- connections ------------------------------------------------------------------------


@routes.get(f"{BASE}/connections")
async def list_connections(request: web.Request) -> web.Response:
    check_known_params(request.query, set())
    rows = await repo.list_connections(request.app[POOL], caller(request).user_id)
    return json_response(page(request, [connection_view(r) for r in rows], None))


@routes.put(f"{BASE}/connections/{{id}}")
async def update_connection(request: web.Request) -> web.Response:
    connection_id = _path_id(request)
    settings = await parse_body(request, ConnectionSettings)
    if connection_id is None:
        return _not_found()
    row = await repo.update_connection(
        request.app[POOL], caller(request).user_id, connection_id, settings.changes()
    )
    return _not_found() if row is None else json_response(connection_view(row))


@routes.delete(f"{BASE}/connections/{{id}}")
async def delete_connection(request: web.Request) -> web.Response:
    connection_id = _path_id(request)
    if connection_id is None:
        return _not_found()
    user_id = caller(request).user_id
    app = request.app
    tokens = await repo.connection_tokens(app[POOL], app[CIPHER], user_id, connection_id)
    if tokens is None:
        return _not_found()
    await revoke_quietly(app, tokens)
    async with app[POOL].acquire() as conn, conn.transaction():
        deleted = await repo.delete_connection(conn, user_id, connection_id)
    return web.Response(status=204) if deleted else _not_found()


# --- queue ------------------------------------------------------------------------------


@routes.post(f"{BASE}/queue")
async def queue_scrobble(request: web.Request) -> web.Response:
    body = await parse_body(request, QueueBody)
    app, user_id = request.app, caller(request).user_id
    row = await repo.get_connection(app[POOL], user_id, body.connection_id)
    if row is None:
        return _not_found()
    try:
        event = manual_event(user_id, body.connection_id, body.request, utc_now())
        work = manual_work(connection_rules(row), event)
    except InvalidScrobble as exc:
        raise InvalidRequest(422, str(exc), exc.errors) from None
    except QueueRefused as exc:
        raise field_error(exc.field, exc.message) from None
    settings = app[SETTINGS]
    topics = WorkTopics(settings.playback_dlq_topic, settings.scrobble_topic_prefix)
    async with app[POOL].acquire() as conn:
        queued = await store_manual_work(conn, topics, user_id, event, work)
    if queued.outbox_ids:
        await _publish(request.app, queued.outbox_ids)
    rows = await repo.scrobbles_by_ids(app[POOL], queued.scrobble_ids)
    body_out = {"items": [history_view(r) for r in rows], "next_cursor": None}
    return json_response(body_out, status=202 if queued.created else 200)


async def _publish(app: web.Application, outbox_ids: list[int]) -> None:
    """Publish now; when Kafka does not take it, the committed outbox rows wait for the
    relay's recovery (here or in any other service), so the work is queued either way."""
    try:
        await asyncio.wait_for(app[RELAY].publish(outbox_ids), PUBLISH_TIMEOUT_S)
    except Exception as exc:  # the rows stay in the outbox; recovery publishes them
        log.warning("queue: publishing deferred to outbox recovery (%s)", type(exc).__name__)


# --- history and imports ----------------------------------------------------------------


@routes.get(f"{BASE}/history")
async def history(request: web.Request) -> web.Response:
    check_known_params(request.query, {"connection_id", "status", "limit", "cursor"})
    status = _query_choice(request, "status", repo.SCROBBLE_STATUSES)
    limit, after = parse_limit(request.query), parse_cursor(request)
    connection_id = await _owned_connection_filter(request)
    rows = await repo.history_page(
        request.app[POOL],
        caller(request).user_id,
        connection_id=connection_id,
        status=status,
        limit=limit,
        after=after,
    )
    rows, next_position = repo.page_end(rows, limit, "created_at")
    return json_response(page(request, [history_view(r) for r in rows], next_position))


@routes.get(f"{BASE}/imported")
async def imported(request: web.Request) -> web.Response:
    check_known_params(request.query, {"connection_id", "limit", "cursor"})
    limit, after = parse_limit(request.query), parse_cursor(request)
    connection_id = await _owned_connection_filter(request)
    rows = await repo.imported_page(
        request.app[POOL],
        caller(request).user_id,
        connection_id=connection_id,
        limit=limit,
        after=after,
    )
    rows, next_position = repo.page_end(rows, limit, "imported_at")
    return json_response(page(request, [imported_view(r) for r in rows], next_position))


# --- admin (role admin, checked by the auth middleware for everything under /admin/) ----


@routes.get(f"{BASE}/admin/dead-letters")
async def dead_letters(request: web.Request) -> web.Response:
    check_known_params(request.query, {"service", "limit", "cursor"})
    service = _query_choice(request, "service", SERVICES)
    limit, after = parse_limit(request.query), parse_cursor(request)
    rows = await repo.dead_page(request.app[POOL], service=service, limit=limit, after=after)
    rows, next_position = repo.page_end(rows, limit, "updated_at")
    return json_response(page(request, [dead_letter_view(r) for r in rows], next_position))


@routes.post(f"{BASE}/admin/dead-letters/replay")
async def replay_dead_letters(request: web.Request) -> web.Response:
    body = await parse_body(request, ReplayBody, optional=True)
    async with request.app[POOL].acquire() as conn:
        count = await replay_dead(conn, body.service, body.id)
    if body.id is not None and count == 0:
        return _not_found("dead scrobble")
    who = caller(request).user_id
    log.info("admin %s replayed %d dead scrobble(s) (service=%s)", who, count, body.service)
    return json_response({"replayed": count})
