"""AniList OAuth (ANILIST_AUTH_URL = .../api/v2/oauth): authorize page and token exchange.

Access tokens are JWT-shaped (three base64url parts) and last a year; there is no refresh.
"""

import base64
import json
import secrets
from typing import TYPE_CHECKING

from aiohttp import web

from scrobble_sandbox.anilist.state import TOKEN_TTL, AniListState
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.fake import USER_KEY
from scrobble_sandbox.core.http import json_response, read_params
from scrobble_sandbox.core.pages import consent_page, decision_user, message_page, redirect
from scrobble_sandbox.core.tokens import new_secret
from scrobble_sandbox.credentials import ANILIST_CLIENT_ID, ANILIST_CLIENT_SECRET, SANDBOX_USER

if TYPE_CHECKING:
    from scrobble_sandbox.anilist.fake import AniListFake

CODE_TTL = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_like(user_id: int) -> str:
    """A token shaped like AniList's JWT; only the fake's own store gives it meaning."""
    at = int(now())
    header = {"typ": "JWT", "alg": "RS256"}
    payload = {
        "aud": ANILIST_CLIENT_ID,
        "jti": secrets.token_hex(16),
        "iat": at,
        "nbf": at,
        "exp": at + TOKEN_TTL,
        "sub": str(user_id),
        "scopes": [],
    }
    parts = [json.dumps(header).encode(), json.dumps(payload).encode(), secrets.token_bytes(32)]
    return ".".join(_b64(p) for p in parts)


def oauth_error(status: int, code: str, message: str) -> web.Response:
    return json_response(
        {"error": code, "error_description": message, "message": message}, status=status
    )


class AniListOAuth:
    def __init__(self, fake: "AniListFake") -> None:
        self.fake = fake

    @property
    def state(self) -> AniListState:
        return self.fake.state

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(f"{prefix}/authorize", self.authorize)
        router.add_post(f"{prefix}/authorize/decision", self.decide)
        router.add_post(f"{prefix}/token", self.token)

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != ANILIST_CLIENT_ID:
            return message_page("Invalid client", "Unknown client_id", status=400)
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri:
            return message_page("Invalid request", "redirect_uri is required", status=400)
        response_type = q.get("response_type", "code")
        if response_type not in ("code", "token"):
            return redirect(
                redirect_uri, {"error": "unsupported_response_type", "state": q.get("state", "")}
            )
        params = {
            "redirect_uri": redirect_uri,
            "state": q.get("state", ""),
            "response_type": response_type,
        }
        if self.fake.auto_approve:
            return self._approve(params, q.get("sandbox_user") or SANDBOX_USER)
        return consent_page(
            service="AniList",
            action=f"{self.fake.url('auth')}/authorize/decision",
            hidden=params,
            prompt="The sandbox app wants access to your AniList account.",
        )

    async def decide(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if form.get("decision") != "approve":
            return redirect(
                form.get("redirect_uri", ""),
                {"error": "access_denied", "state": form.get("state", "")},
            )
        return self._approve(form, decision_user(form))

    def _approve(self, params: dict[str, str], name: str) -> web.Response:
        user = self.state.user_named(name, create=True)
        assert user is not None
        if params.get("response_type") == "token":
            # Implicit grant: the token travels in the fragment, as AniList sends it.
            token = self._issue(user.name, user.id)
            fragment = f"access_token={token}&token_type=Bearer&expires_in={TOKEN_TTL}"
            return web.Response(
                status=302, headers={"Location": f"{params['redirect_uri']}#{fragment}"}
            )
        code = new_secret("ac_", 16)
        self.state.codes[code] = (user.name, params["redirect_uri"], now() + CODE_TTL, False)
        return redirect(params["redirect_uri"], {"code": code, "state": params.get("state", "")})

    def _issue(self, name: str, user_id: int) -> str:
        token = jwt_like(user_id)
        self.state.tokens.add(token, name, now() + TOKEN_TTL)
        return token

    async def token(self, request: web.Request) -> web.Response:
        body = await read_params(request)
        if (
            body.get("client_id") != ANILIST_CLIENT_ID
            or body.get("client_secret") != ANILIST_CLIENT_SECRET
        ):
            return oauth_error(401, "invalid_client", "Client authentication failed")
        if body.get("grant_type") != "authorization_code":
            return oauth_error(400, "unsupported_grant_type", "The grant type is not supported")
        grant = self.state.codes.get(body.get("code", ""))
        if grant is None or grant[3] or grant[2] < now() or grant[1] != body.get("redirect_uri"):
            return oauth_error(400, "invalid_grant", "The authorization code is invalid")
        name, redirect_uri, expires_at, _ = grant
        self.state.codes[body["code"]] = (name, redirect_uri, expires_at, True)
        user = self.state.user_named(name, create=True)
        assert user is not None
        request[USER_KEY] = name
        return json_response(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL,
                "access_token": self._issue(name, user.id),
            }
        )


__all__ = ["AniListOAuth", "message_page"]
