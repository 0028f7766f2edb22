"""``/connections`` (and ``/``): one card per tracker with its state, last delivery, the
way to connect it, its settings and Disconnect.

The card's buttons call the JSON API from the page's script (``static/page.js``), with the
session cookie and its CSRF token: connecting starts the flow there, in this browser, so
the cookie that binds the flow to the browser lands here; the browser then opens the
authorization URL and comes back to this page (``?connected=<service>``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from scrobble_gateway import repository as repo
from scrobble_gateway.connect import providers
from scrobble_gateway.connect.return_urls import PAGE_RETURN_PATH
from scrobble_gateway.keys import POOL, SETTINGS
from scrobble_gateway.page import describe, queries
from scrobble_gateway.page.common import context, signed_in
from scrobble_gateway.page.render import page_view, render, see_other
from scrobble_shared.trackers.connect import AuthorizationCode
from scrobble_shared.trackers.registry import SERVICES, tracker

routes = web.RouteTableDef()

CONNECTIONS_PATH: Final = PAGE_RETURN_PATH


@dataclass(frozen=True)
class Card:
    """What one tracker's card shows."""

    service: str
    title: str
    keeps: str
    connection: dict[str, Any] | None
    state: str | None
    last_delivery: dict[str, Any] | None
    unavailable: str | None
    browser_flow: bool
    device_flow: bool
    # A token the person pastes: where they find it (None: not this kind of flow).
    token_where: str | None
    # The token flow also asks for the address of the person's own server (Maloja).
    own_server: bool
    revokes: bool
    music: bool
    return_url: str

    @property
    def state_label(self) -> str:
        return describe.CONNECTION_STATES.get(self.state or "", "Not connected")


@routes.get("/")
async def home(_: web.Request) -> web.Response:
    return see_other(CONNECTIONS_PATH)


@routes.get(CONNECTIONS_PATH)
@page_view
async def connections_page(request: web.Request) -> web.Response:
    session = await signed_in(request)
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    rows = {row["service"]: row for row in await repo.list_connections(pool, session.user_id)}
    delivered: dict[uuid.UUID, dict[str, Any]] = await queries.last_deliveries(
        pool, session.user_id
    )
    base = settings.gateway_public_url.rstrip("/") + CONNECTIONS_PATH
    cards = []
    for service in SERVICES:
        row = rows.get(service)
        known = tracker(service)
        token = providers.token_flow(service)
        flow = providers.flow(service)
        cards.append(
            Card(
                service=service,
                title=known.title,
                keeps=known.keeps,
                connection=row,
                state=None if row is None else describe.connection_state(row),
                last_delivery=None if row is None else delivered.get(row["id"]),
                unavailable=providers.service_unavailable_reason(settings, service),
                browser_flow=providers.in_browser(service),
                device_flow=providers.device_flow(service) is not None,
                token_where=None if token is None else token.where,
                own_server=token is not None and token.user_api_url,
                revokes=isinstance(flow, AuthorizationCode) and flow.revoke is not None,
                music=known.music,
                return_url=f"{base}?connected={service}",
            )
        )
    connected = request.query.get("connected")
    flash = None
    if connected in SERVICES:
        flash = f"{describe.service_title(connected)} is connected."
    return render(
        request,
        "connections.html",
        context(
            session,
            nav=CONNECTIONS_PATH,
            title="Connections",
            cards=cards,
            flash=flash,
            threshold_meaning=describe.THRESHOLD_MEANING,
            music_threshold_meaning=describe.MUSIC_THRESHOLD_MEANING,
        ),
    )
