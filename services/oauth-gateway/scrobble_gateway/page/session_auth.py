"""Who a request comes from when it brings the page's session cookie.

Two uses, two rules:

- the page's own routes (HTML pages and partials, the sign-out form) find the session from
  the cookie alone for reading; their forms carry the session's CSRF token;
- the JSON API (``/api/v1/...``), for the calls the page's script makes: the cookie counts
  only together with the session's CSRF token in ``X-CSRF-Token``, on every method, reads
  included. A cookie alone therefore never authenticates an API call: a page of another
  site can make the browser send the cookie, but cannot read the token or set the header
  (a cross-origin request with a custom header needs a CORS preflight we never grant).
  Requests a browser marks ``Sec-Fetch-Site: cross-site`` are refused outright.

A bearer token, when a request has one, always wins: the bearer middleware asks for the
session only when there is no ``Authorization`` header.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from scrobble_gateway.auth import SessionRefused
from scrobble_gateway.keys import POOL, SETTINGS, Caller
from scrobble_gateway.page import sessions
from scrobble_gateway.page.session_store import PageSession, find_session

_FOUND: Final = web.RequestKey("page_session", object)
_NONE: Final = object()


def is_cross_site(request: web.Request) -> bool:
    """A browser says the request was made by a page of another site."""
    return request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site"


def session_cookie(request: web.Request) -> str | None:
    return sessions.cookie_value(request, request.app[SETTINGS].gateway_public_url)


async def current_session(request: web.Request) -> PageSession | None:
    """The live session of the request's cookie (looked up once per request)."""
    if _FOUND in request:
        found = request[_FOUND]
        return found if isinstance(found, PageSession) else None
    value = session_cookie(request)
    session = None
    if value is not None:
        settings = request.app[SETTINGS]
        session = await find_session(
            request.app[POOL], value, idle=settings.gateway_session_idle_timeout
        )
    request[_FOUND] = _NONE if session is None else session
    return session


async def api_caller(request: web.Request) -> Caller | None:
    """For the bearer middleware: the caller of an API request without a bearer token, from
    its session cookie and the session's CSRF token; None when there is no live session;
    :class:`SessionRefused` (403) when the token is missing or wrong, or another site made
    the request."""
    value = session_cookie(request)
    if value is None:
        return None
    if is_cross_site(request):
        raise SessionRefused("requests made by another site are not accepted with a session")
    session = await current_session(request)
    if session is None:
        return None
    if not sessions.csrf_matches(value, request.headers.get(sessions.CSRF_HEADER)):
        raise SessionRefused(
            f"a session cookie counts only with the page's CSRF token in {sessions.CSRF_HEADER}"
        )
    return Caller(user_id=session.user_id, roles=session.roles)
