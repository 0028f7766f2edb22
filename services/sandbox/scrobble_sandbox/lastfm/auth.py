"""Last.fm web auth: the page a browser visits, which returns to `cb` with `?token=`.
Another tracker speaking the protocol (Libre.fm) shows it under its own name and key."""

from typing import ClassVar

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.consent import ConsentFlow
from scrobble_sandbox.core.pages import message_page, redirect
from scrobble_sandbox.core.tokens import new_secret
from scrobble_sandbox.credentials import LASTFM_API_KEY
from scrobble_sandbox.lastfm.state import AuthToken, LastfmState


class LastfmWebAuth(ConsentFlow[LastfmState]):
    service = "Last.fm"
    prompt = "The sandbox app wants to scrobble to your Last.fm profile."
    decision_path = "/api/auth/decision"
    # The API key the page must be opened with.
    api_key: ClassVar[str] = LASTFM_API_KEY

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(f"{prefix}/api/auth/", self.page)
        router.add_get(f"{prefix}/api/auth", self.page)
        router.add_post(f"{prefix}/api/auth/decision", self.decide)

    async def page(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("api_key") != self.api_key:
            return message_page("Invalid API key", "This application is not known", status=400)
        return self.consent(q, {"cb": q.get("cb", ""), "token": q.get("token", "")})

    def refuse(self, params: dict[str, str]) -> web.Response:
        # Last.fm does not call back on refusal; the user just stays on its site.
        return message_page("Access denied", "You did not grant access to the application.")

    def approve(self, params: dict[str, str], user: str) -> web.Response:
        state = self.state
        state.users.add(user)
        desktop_token = params.get("token", "")
        if desktop_token:
            # Desktop flow: the app already holds an auth.getToken token; approve that one.
            token = state.tokens.get(desktop_token)
            if token is None:
                return message_page("Invalid token", "This token is not known", status=400)
            token.user = user
            return message_page("Application authenticated", "You can close this window.")
        token_text = new_secret("lt", 16)
        state.tokens[token_text] = AuthToken(created=now(), user=user)
        if not params.get("cb"):
            return message_page("Application authenticated", token_text)
        return redirect(params["cb"], {"token": token_text})
