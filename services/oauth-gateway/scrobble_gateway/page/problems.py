"""``/problems``: work that gave up (dead), with its reason and Retry one / Retry all, and
now-playing updates that did not go (failed; best effort, never retried). A user sees
their own; an admin sees everyone's, each row of another user marked as such, and retries
through the admin routes."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from scrobble_gateway import repository as repo
from scrobble_gateway.keys import CURSORS, POOL
from scrobble_gateway.page import queries
from scrobble_gateway.page.common import context, signed_in
from scrobble_gateway.page.render import page_view, render

PROBLEMS_PATH: Final = "/problems"
PAGE_SIZE: Final = 25
FAILED_SHOWN: Final = 25

routes = web.RouteTableDef()


@routes.get(PROBLEMS_PATH)
@page_view
async def problems_page(request: web.Request) -> web.Response:
    session = await signed_in(request)
    pool = request.app[POOL]
    scope = None if session.is_admin else session.user_id
    after = request.app[CURSORS].decode_or_start(request.query.get("cursor"))
    dead = await repo.dead_page(pool, service=None, limit=PAGE_SIZE, after=after, user_id=scope)
    dead, next_position = repo.page_end(dead, PAGE_SIZE, "updated_at")
    failed = await queries.problems_page(
        pool, scope, status="failed", limit=FAILED_SHOWN, after=None
    )
    failed = failed[:FAILED_SHOWN]
    return render(
        request,
        "problems.html",
        context(
            session,
            nav=PROBLEMS_PATH,
            title="Problems",
            dead=dead,
            failed=failed,
            dead_total=await queries.count_dead(pool, scope),
            own_dead_total=await queries.count_dead(pool, session.user_id),
            first_link=PROBLEMS_PATH if after is not None else None,
            next_link=(
                None
                if next_position is None
                else f"{PROBLEMS_PATH}?cursor={request.app[CURSORS].encode(next_position)}"
            ),
            bad_cursor=bool(request.query.get("cursor")) and after is None,
        ),
    )
