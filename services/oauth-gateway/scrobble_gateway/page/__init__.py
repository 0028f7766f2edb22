"""The page for people at ``/`` (issue 16, CONTRACTS section 9): server-rendered HTML
(jinja2) with a small script, served by the gateway on the same origin as its API.

- :mod:`.sessions` (pure) and :mod:`.session_store`: the session cookie, its CSRF token,
  and the sessions in Postgres; :mod:`.session_auth`: who a request with the cookie is,
  for the page and (with the CSRF token) for the API the page's script calls.
- :mod:`.signin`: sign-in links, ``POST /session`` with a bearer token, sign-out, and the
  admin route that makes links.
- :mod:`.connections`, :mod:`.activity`, :mod:`.problems`, :mod:`.import_page`,
  :mod:`.media_servers`: the pages; :mod:`.queries`: the reads they need beyond the API's
  repository; :mod:`.describe` (pure): what the page says about things.
- :mod:`.render`: templates, headers (a strict Content-Security-Policy), static files.

The page's routes answer without a bearer token (they check the session themselves);
:func:`also_public` tells the bearer middleware so, and :func:`setup` mounts everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from aiohttp import web

from scrobble_gateway.page import (
    activity,
    connections,
    import_page,
    media_servers,
    problems,
    signin,
)
from scrobble_gateway.page.render import STATIC_PREFIX, serve_static, setup_templates
from scrobble_gateway.page.session_auth import api_caller
from scrobble_gateway.routing import route_template
from scrobble_shared.db.login_links import SIGN_IN_PATH
from scrobble_shared.settings import Settings, SettingsError

_ROUTE_TABLES: Final = (
    connections.routes,
    activity.routes,
    problems.routes,
    import_page.routes,
    media_servers.routes,
)
STATIC_TEMPLATE: Final = f"{STATIC_PREFIX}/{{name}}"


def _templates(tables: tuple[web.RouteTableDef, ...]) -> frozenset[str]:
    found = set()
    for table in tables:
        for route in table:
            if isinstance(route, web.RouteDef):
                found.add(route.path)
    return frozenset(found)


# The page's own routes: HTML for browsers (not part of the JSON API or its OpenAPI
# document); they answer without a bearer token and check the session themselves.
PAGE_TEMPLATES: Final = _templates(_ROUTE_TABLES) | {
    SIGN_IN_PATH,
    signin.SIGN_OUT_PATH,
    STATIC_TEMPLATE,
}


def is_page_route(request: web.Request) -> bool:
    return route_template(request) in PAGE_TEMPLATES


def also_public(is_public: Callable[[web.Request], bool]) -> Callable[[web.Request], bool]:
    """``is_public`` widened to the page's own routes."""

    def public(request: web.Request) -> bool:
        return is_public(request) or is_page_route(request)

    return public


def check_settings(settings: Settings) -> None:
    """SettingsError naming the setting when the session times cannot work."""
    idle, max_age = settings.gateway_session_idle_timeout, settings.gateway_session_max_age
    if idle.total_seconds() <= 0:
        raise SettingsError("GATEWAY_SESSION_IDLE_TIMEOUT must be longer than 0")
    if max_age.total_seconds() <= 0:
        raise SettingsError("GATEWAY_SESSION_MAX_AGE must be longer than 0")


def setup(app: web.Application, settings: Settings) -> None:
    """Templates, static files and every route of the page (sign-in included)."""
    check_settings(settings)
    setup_templates(app)
    app.router.add_get(STATIC_TEMPLATE, serve_static)
    app.router.add_routes(signin.routes)
    for table in _ROUTE_TABLES:
        app.router.add_routes(table)


__all__ = ["PAGE_TEMPLATES", "also_public", "api_caller", "is_page_route", "setup"]
