"""What every page handler needs: the signed-in session (or the way to sign in), and the
context every template gets (who is signed in, the CSRF token, where in the page we are)."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from scrobble_gateway.page.session_auth import current_session
from scrobble_gateway.page.session_store import PageSession
from scrobble_shared.db.login_links import SIGN_IN_PATH

# (path, label) of the main navigation, in order.
NAVIGATION: Final = (
    ("/connections", "Connections"),
    ("/activity", "Activity"),
    ("/problems", "Problems"),
    ("/import", "Import"),
    ("/media-servers", "Media servers"),
)
API: Final = "/api/v1/scrobble"


async def signed_in(request: web.Request) -> PageSession:
    """The live session, or a 303 to the sign-in page (nothing of the page is shown)."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPSeeOther(SIGN_IN_PATH, headers={"Cache-Control": "no-store"})
    return session


def context(session: PageSession, *, nav: str, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "session": session,
        "csrf_token": session.csrf_token,
        "nav": nav,
        "navigation": NAVIGATION,
        "title": title,
        "api": API,
        **extra,
    }
