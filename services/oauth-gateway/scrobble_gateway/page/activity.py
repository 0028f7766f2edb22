"""``/activity``: what was sent where, newest first, with the readable reason of what did
not go; filters by tracker and status, pages by cursor. ``/activity/now-playing`` is the
partial the page refreshes every few seconds without reloading."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from scrobble_gateway import repository as repo
from scrobble_gateway.keys import CURSORS, POOL
from scrobble_gateway.page import describe, queries
from scrobble_gateway.page.common import context, signed_in
from scrobble_gateway.page.render import fragment_message, page_view, render
from scrobble_gateway.page.session_auth import current_session
from scrobble_shared.trackers.registry import SERVICES

ACTIVITY_PATH: Final = "/activity"
NOW_PLAYING_PATH: Final = "/activity/now-playing"
PAGE_SIZE: Final = 25
NOW_PLAYING_EVERY_S: Final = 10

routes = web.RouteTableDef()


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def _link(service: str | None, status: str | None, cursor: str | None) -> str:
    query = {k: v for k, v in (("service", service), ("status", status), ("cursor", cursor)) if v}
    return ACTIVITY_PATH + (f"?{urlencode(query)}" if query else "")


@routes.get(ACTIVITY_PATH)
@page_view
async def activity_page(request: web.Request) -> web.Response:
    session = await signed_in(request)
    pool = request.app[POOL]
    service = _choice(request.query.get("service"), SERVICES)
    status = _choice(request.query.get("status"), repo.SCROBBLE_STATUSES)
    after = request.app[CURSORS].decode_or_start(request.query.get("cursor"))
    notices = []
    if request.query.get("service") and service is None:
        notices.append("That tracker is not one this server knows; showing every tracker.")
    if request.query.get("status") and status is None:
        notices.append("That status is not one this server knows; showing every status.")
    if request.query.get("cursor") and after is None:
        notices.append("That page link is not valid; showing the newest.")
    connections = await repo.list_connections(pool, session.user_id)
    by_service = {row["service"]: row["id"] for row in connections}
    rows: list[dict[str, Any]] = []
    next_link = None
    if service is None or service in by_service:
        rows = await repo.history_page(
            pool,
            session.user_id,
            connection_id=None if service is None else by_service[service],
            status=status,
            limit=PAGE_SIZE,
            after=after,
        )
        rows, next_position = repo.page_end(rows, PAGE_SIZE, "created_at")
        if next_position is not None:
            next_link = _link(service, status, request.app[CURSORS].encode(next_position))
    playing = await queries.now_playing(pool, session.user_id)
    return render(
        request,
        "activity.html",
        context(
            session,
            nav=ACTIVITY_PATH,
            title="Activity",
            rows=rows,
            service=service,
            status=status,
            services=SERVICES,
            statuses=repo.SCROBBLE_STATUSES,
            status_labels=describe.STATUS_LABELS,
            filtered=service is not None or status is not None,
            not_connected=service is not None and service not in by_service,
            first_link=_link(service, status, None) if after is not None else None,
            next_link=next_link,
            notices=notices,
            playing=playing,
            now_playing_path=NOW_PLAYING_PATH,
            now_playing_every=NOW_PLAYING_EVERY_S,
        ),
    )


@routes.get(NOW_PLAYING_PATH)
@page_view
async def now_playing_partial(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        return fragment_message(401, "Your session has ended. Sign in again to see this.")
    playing = await queries.now_playing(request.app[POOL], session.user_id)
    return render(request, "_now_playing.html", {"playing": playing})
