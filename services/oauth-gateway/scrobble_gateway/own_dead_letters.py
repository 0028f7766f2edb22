"""A user's own dead work: ``GET /api/v1/scrobble/dead-letters`` and ``POST
/api/v1/scrobble/dead-letters/replay`` (CONTRACTS section 4), the same as the admin routes
but scoped in SQL to the caller, so another user's dead scrobble is a 404 exactly like a
missing one. Replaying makes the work due now with its attempts from zero; the
dispatcher's retry poller sends it."""

from __future__ import annotations

import logging

from aiohttp import web

from scrobble_gateway import repository as repo
from scrobble_gateway.keys import POOL, caller
from scrobble_gateway.problems import problem
from scrobble_gateway.routing import API_BASE as BASE
from scrobble_gateway.schemas import ReplayBody
from scrobble_gateway.validation import (
    check_known_params,
    field_error,
    parse_body,
    parse_cursor,
    parse_limit,
)
from scrobble_gateway.views import dead_letter_view, json_response, page
from scrobble_shared.db.dead_letters import replay_dead
from scrobble_shared.service_names import SERVICES

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get(f"{BASE}/dead-letters")
async def own_dead_letters(request: web.Request) -> web.Response:
    check_known_params(request.query, {"service", "limit", "cursor"})
    service = request.query.get("service")
    if service is not None and service not in SERVICES:
        raise field_error("service", f"must be one of {', '.join(SERVICES)}")
    limit, after = parse_limit(request.query), parse_cursor(request)
    rows = await repo.dead_page(
        request.app[POOL],
        service=service,
        limit=limit,
        after=after,
        user_id=caller(request).user_id,
    )
    rows, next_position = repo.page_end(rows, limit, "updated_at")
    return json_response(page(request, [dead_letter_view(r) for r in rows], next_position))


@routes.post(f"{BASE}/dead-letters/replay")
async def replay_own_dead_letters(request: web.Request) -> web.Response:
    body = await parse_body(request, ReplayBody, optional=True)
    user_id = caller(request).user_id
    async with request.app[POOL].acquire() as conn:
        count = await replay_dead(conn, body.service, body.id, user_id=user_id)
    if body.id is not None and count == 0:
        return problem(404, "Not Found", "no such dead scrobble")
    log.info("user %s replayed %d own dead scrobble(s) (service=%s)", user_id, count, body.service)
    return json_response({"replayed": count})
