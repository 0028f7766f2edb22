"""``/import``: start a history import per tracker, watch it go (``/import/progress``, the
partial the page refreshes while a job is queued or running), and see what was added."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from scrobble_gateway import repository as repo
from scrobble_gateway.keys import POOL
from scrobble_gateway.page import describe, queries
from scrobble_gateway.page.common import context, signed_in
from scrobble_gateway.page.render import fragment_message, page_view, render
from scrobble_gateway.page.session_auth import current_session
from scrobble_gateway.page.session_store import PageSession

IMPORT_PATH: Final = "/import"
PROGRESS_PATH: Final = "/import/progress"
PROGRESS_EVERY_S: Final = 1
ADDED_SHOWN: Final = 25
ACTIVE: Final = frozenset({"queued", "running"})

routes = web.RouteTableDef()


async def _jobs(request: web.Request, session: PageSession) -> list[dict[str, Any]]:
    """Each connection with its newest job (None: never imported), in card order."""
    pool = request.app[POOL]
    connections = await repo.list_connections(pool, session.user_id)
    latest = await queries.latest_jobs(pool, session.user_id)
    found = [
        {
            "connection": row,
            "title": describe.service_title(row["service"]),
            "usable": row["enabled"] and row["status"] == "active",
            "job": latest.get(row["id"]),
        }
        for row in connections
    ]
    order = {service: i for i, service in enumerate(describe.services())}
    return sorted(found, key=lambda entry: order.get(entry["connection"]["service"], 99))


def _any_active(entries: list[dict[str, Any]]) -> bool:
    return any(e["job"] is not None and e["job"]["state"] in ACTIVE for e in entries)


@routes.get(IMPORT_PATH)
@page_view
async def import_page(request: web.Request) -> web.Response:
    session = await signed_in(request)
    entries = await _jobs(request, session)
    added = await repo.imported_page(
        request.app[POOL], session.user_id, connection_id=None, limit=ADDED_SHOWN, after=None
    )
    return render(
        request,
        "import.html",
        context(
            session,
            nav=IMPORT_PATH,
            title="Import",
            entries=entries,
            active=_any_active(entries),
            added=added[:ADDED_SHOWN],
            progress_path=PROGRESS_PATH,
            progress_every=PROGRESS_EVERY_S,
        ),
    )


@routes.get(PROGRESS_PATH)
@page_view
async def progress_partial(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        return fragment_message(401, "Your session has ended. Sign in again to see this.")
    entries = await _jobs(request, session)
    return render(
        request, "_import_progress.html", {"entries": entries, "active": _any_active(entries)}
    )
