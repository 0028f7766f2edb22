"""``/media-servers``: the user's sources (an admin's: every source) with how to set each
media server up, a way to add one (its webhook URL is shown once, with a copy button),
rotate its secret, change its name and filters, map server users, and delete it. Every
change goes through ``/api/v1/scrobble/sources`` from the page's script."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from scrobble_gateway.keys import POOL, SETTINGS
from scrobble_gateway.page.common import context, signed_in
from scrobble_gateway.page.render import page_view, render
from scrobble_gateway.sources import PATH_PLACEHOLDER
from scrobble_shared.db import sources as db
from scrobble_shared.sources import SOURCE_KINDS, webhook_path

MEDIA_SERVERS_PATH: Final = "/media-servers"
# A person's page lists this many; an operator with more uses the API or the CLI.
SHOWN: Final = 200
KIND_TITLES: Final = {"jellyfin": "Jellyfin", "plex": "Plex", "emby": "Emby", "events": "Events"}

routes = web.RouteTableDef()


@routes.get(MEDIA_SERVERS_PATH)
@page_view
async def media_servers_page(request: web.Request) -> web.Response:
    session = await signed_in(request)
    scope: db.Scope = db.ANY_OWNER if session.is_admin else session.user_id
    async with request.app[POOL].acquire() as conn:
        found = await db.list_sources(conn, scope, limit=SHOWN + 1)
    intake = request.app[SETTINGS].intake_public_url.rstrip("/")
    return render(
        request,
        "media_servers.html",
        context(
            session,
            nav=MEDIA_SERVERS_PATH,
            title="Media servers",
            sources=found[:SHOWN],
            more=len(found) > SHOWN,
            kinds=SOURCE_KINDS,
            kind_titles=KIND_TITLES,
            url_template={
                kind: intake + webhook_path(kind, PATH_PLACEHOLDER) for kind in SOURCE_KINDS
            },
        ),
    )
