"""Last.fm web auth: the page a browser visits, which returns to `cb` with `?token=`."""

from typing import TYPE_CHECKING

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.pages import consent_page, decision_user, message_page, redirect
from scrobble_sandbox.core.tokens import new_secret
from scrobble_sandbox.credentials import LASTFM_API_KEY, SANDBOX_USER
from scrobble_sandbox.lastfm.state import AuthToken

if TYPE_CHECKING:
    from scrobble_sandbox.lastfm.fake import LastfmFake


class LastfmWebAuth:
    def __init__(self, fake: "LastfmFake") -> None:
        self.fake = fake

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(f"{prefix}/api/auth/", self.page)
        router.add_get(f"{prefix}/api/auth", self.page)
        router.add_post(f"{prefix}/api/auth/decision", self.decide)

    async def page(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("api_key") != LASTFM_API_KEY:
            return message_page("Invalid API key", "This application is not known", status=400)
        params = {"cb": q.get("cb", ""), "token": q.get("token", "")}
        if self.fake.auto_approve:
            return self._approve(params, q.get("sandbox_user") or SANDBOX_USER)
        return consent_page(
            service="Last.fm",
            action=f"{self.fake.url('auth')}/api/auth/decision",
            hidden=params,
            prompt="The sandbox app wants to scrobble to your Last.fm profile.",
        )

    async def decide(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if form.get("decision") != "approve":
            # Last.fm does not call back on refusal; the user just stays on its site.
            return message_page("Access denied", "You did not grant access to the application.")
        return self._approve(form, decision_user(form))

    def _approve(self, params: dict[str, str], user: str) -> web.Response:
        state = self.fake.state
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
