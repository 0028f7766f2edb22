"""Ways into the page, and out of it (CONTRACTS section 9):

- ``GET /sign-in?token=...``: the page of a one-time sign-in link. It asks before it signs
  in (a button that posts the form), so a mail scanner or link preview that opens the link
  does not use it up. A link that cannot sign in says why in a sentence.
- ``POST /sign-in``: spends the link, opens a session (ending the one this browser had:
  the cookie is new at every sign-in) and goes to the page. The form is bound to the
  browser that showed it by a short-lived cookie whose value the form repeats, so another
  site cannot sign a visitor into an account of its choosing.
- ``POST /session`` with a bearer JWT: the host application hands its user over; the answer
  sets the session cookie in the browser whose script called it. Only a bearer token opens
  a session here, never the cookie of another session.
- ``POST /sign-out``: ends the session in the database and clears the cookie.
- ``POST /api/v1/scrobble/admin/login-links``: an admin makes a link for a user; the link
  is in the answer and never in a log line.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from typing import Final

from aiohttp import web
from pydantic import StrictBool

from scrobble_gateway.auth import bearer_token
from scrobble_gateway.keys import POOL, SETTINGS, caller
from scrobble_gateway.page import sessions
from scrobble_gateway.page.render import message_page, page_view, render, see_other
from scrobble_gateway.page.session_auth import current_session, is_cross_site, session_cookie
from scrobble_gateway.page.session_store import end_session, open_session
from scrobble_gateway.problems import problem
from scrobble_gateway.routing import ADMIN_PREFIX
from scrobble_gateway.schemas import _Body
from scrobble_gateway.validation import parse_body
from scrobble_gateway.views import json_response
from scrobble_shared.db.login_links import (
    LOGIN_LINK_TTL,
    SIGN_IN_PATH,
    LinkProblem,
    LinkRejected,
    check_login_link,
    create_login_link,
    spend_login_link,
)

log = logging.getLogger(__name__)

SIGN_OUT_PATH: Final = "/sign-out"
SESSION_PATH: Final = "/session"
LOGIN_LINKS_PATH: Final = f"{ADMIN_PREFIX}login-links"
HOME: Final = "/connections"
# The cookie that binds the sign-in form to the browser that was shown it.
FORM_COOKIE: Final = "scrobble_sign_in"
FORM_FIELD: Final = "form_token"
TOKEN_FIELD: Final = "token"  # noqa: S105 - a form field's name
MAX_TOKEN_LENGTH: Final = 128

routes = web.RouteTableDef()

_LINK_PROBLEMS: Final[dict[LinkProblem, tuple[int, str, str]]] = {
    "unknown": (
        400,
        "Sign-in link not recognised",
        "This sign-in link is not one this server made, or it was copied only in part. "
        "Ask for a new link.",
    ),
    "used": (
        400,
        "Sign-in link already used",
        "Each sign-in link works once, and this one has been used. Ask for a new link.",
    ),
    "expired": (
        410,
        "Sign-in link expired",
        "Sign-in links work for 15 minutes after they are made. Ask for a new link.",
    ),
}


def _link_problem(request: web.Request, reason: LinkProblem) -> web.Response:
    status, title, message = _LINK_PROBLEMS[reason]
    return message_page(request, status, title, message)


def _plausible_token(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isprintable()


def _secure(request: web.Request) -> bool:
    return sessions.is_secure(request.app[SETTINGS].gateway_public_url)


@routes.get(SIGN_IN_PATH)
@page_view
async def sign_in_page(request: web.Request) -> web.Response:
    token = request.query.get(TOKEN_FIELD, "")
    if not token:
        signed_in = await current_session(request) is not None
        return render(
            request,
            "sign_in.html",
            {
                "title": "Sign in",
                "session": None,
                "nav": None,
                "signed_out": "signed_out" in request.query,
                "signed_in": signed_in,
                "token": None,
                "form_token": None,
            },
        )
    if not _plausible_token(token):
        return _link_problem(request, "unknown")
    async with request.app[POOL].acquire() as conn:
        try:
            await check_login_link(conn, token)
        except LinkRejected as exc:
            return _link_problem(request, exc.reason)
    form_token = secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        {
            "title": "Sign in",
            "session": None,
            "nav": None,
            "signed_out": False,
            "signed_in": False,
            "token": token,
            "form_token": form_token,
        },
    )
    response.set_cookie(
        FORM_COOKIE,
        form_token,
        max_age=int(LOGIN_LINK_TTL.total_seconds()),
        path=SIGN_IN_PATH,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


@routes.post(SIGN_IN_PATH)
@page_view
async def sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    token, form_token = form.get(TOKEN_FIELD), form.get(FORM_FIELD)
    bound = request.cookies.get(FORM_COOKIE, "")
    if (
        not isinstance(token, str)
        or not isinstance(form_token, str)
        or not bound
        or not hmac.compare_digest(bound.encode(), form_token.encode("utf-8", "replace"))
        or is_cross_site(request)
    ):
        return message_page(
            request,
            403,
            "Sign-in form not accepted",
            "This sign-in form did not come from the page this browser was shown, or it "
            "waited too long. Open your sign-in link again.",
        )
    if not _plausible_token(token):
        return _link_problem(request, "unknown")
    async with request.app[POOL].acquire() as conn:
        try:
            spent = await spend_login_link(conn, token)
        except LinkRejected as exc:
            return _link_problem(request, exc.reason)
    roles = frozenset({"admin"}) if spent.admin else frozenset()
    response = await _signed_in(request, spent.user_id, roles, see_other(HOME))
    response.del_cookie(FORM_COOKIE, path=SIGN_IN_PATH)
    log.info(
        "page: user %s signed in with a link%s", spent.user_id, " (admin)" if spent.admin else ""
    )
    return response


async def _signed_in(
    request: web.Request, user_id: uuid.UUID, roles: frozenset[str], response: web.Response
) -> web.Response:
    """Open the session (ending this browser's previous one) and set its cookie."""
    settings = request.app[SETTINGS]
    value = await open_session(
        request.app[POOL],
        user_id=user_id,
        roles=roles,
        max_age=settings.gateway_session_max_age,
        replacing=session_cookie(request),
    )
    sessions.set_cookie(
        response,
        value,
        public_url=settings.gateway_public_url,
        max_age=settings.gateway_session_max_age,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post(SIGN_OUT_PATH)
@page_view
async def sign_out(request: web.Request) -> web.Response:
    form = await request.post()
    session = await current_session(request)
    value = session_cookie(request)
    given = form.get(sessions.CSRF_FIELD)
    if session is not None and value is not None:
        if not isinstance(given, str) or not sessions.csrf_matches(value, given):
            return message_page(
                request,
                403,
                "Form not accepted",
                "This form did not carry the page's security token, so nothing was done. "
                "Go back, reload the page and try again.",
            )
        await end_session(request.app[POOL], value)
        log.info("page: user %s signed out", session.user_id)
    response = see_other(f"{SIGN_IN_PATH}?signed_out=1")
    sessions.clear_cookie(response, public_url=request.app[SETTINGS].gateway_public_url)
    return response


@routes.post(SESSION_PATH)
async def open_session_with_bearer(request: web.Request) -> web.Response:
    """Behind the bearer middleware; a caller known only by a session cookie is refused,
    so one session can never open another."""
    if bearer_token(request) is None:
        return problem(401, "Unauthorized", "opening a session needs a bearer token")
    who = caller(request)
    settings = request.app[SETTINGS]
    answer = json_response(
        {
            "user_id": who.user_id,
            "admin": who.is_admin,
            "expires_in": int(settings.gateway_session_max_age.total_seconds()),
            "idle_timeout": int(settings.gateway_session_idle_timeout.total_seconds()),
        }
    )
    await _signed_in(request, who.user_id, who.roles, answer)
    log.info("page: user %s signed in with a bearer token", who.user_id)
    return answer


class LoginLinkBody(_Body):
    """``POST /admin/login-links``: whom the link signs in, and whether as an admin."""

    user_id: uuid.UUID
    admin: StrictBool = False


@routes.post(LOGIN_LINKS_PATH)
async def make_login_link(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginLinkBody)
    async with request.app[POOL].acquire() as conn:
        link = await create_login_link(
            conn,
            body.user_id,
            admin=body.admin,
            public_url=request.app[SETTINGS].gateway_public_url,
        )
    log.info(
        "admin %s made a sign-in link for user %s%s",
        caller(request).user_id,
        body.user_id,
        " (admin)" if body.admin else "",
    )
    answer = json_response(
        {
            "url": link.url,
            "user_id": body.user_id,
            "admin": body.admin,
            "expires_at": link.expires_at,
        },
        status=201,
    )
    answer.headers["Cache-Control"] = "no-store"
    return answer


__all__ = ["LoginLinkBody", "routes"]
