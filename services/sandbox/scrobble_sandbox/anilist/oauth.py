"""AniList OAuth (ANILIST_AUTH_URL = .../api/v2/oauth): authorize page and token exchange.

Access tokens are JWT-shaped (three base64url parts) and last a year; there is no refresh.
"""

import base64
import json
import secrets
from typing import Any

from aiohttp import web

from scrobble_sandbox.anilist.state import TOKEN_TTL, AniListState
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.http import json_response
from scrobble_sandbox.core.oauth import AuthorizationCodeFlow, CodeGrant
from scrobble_sandbox.core.pages import message_page
from scrobble_sandbox.credentials import ANILIST_CLIENT_ID, ANILIST_CLIENT_SECRET


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


class AniListOAuth(AuthorizationCodeFlow[AniListState]):
    service = "AniList"
    prompt = "The sandbox app wants access to your AniList account."
    # The auth surface is ANILIST_AUTH_URL, which already ends in /oauth.
    decision_path = "/authorize/decision"
    client_id = ANILIST_CLIENT_ID
    client_secret = ANILIST_CLIENT_SECRET
    response_types = ("code", "token")
    default_response_type = "code"
    code_prefix = "ac_"

    @property
    def codes(self) -> dict[str, CodeGrant]:
        return self.state.codes

    def oauth_error(self, status: int, code: str, description: str) -> web.Response:
        return oauth_error(status, code, description)

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(f"{prefix}/authorize", self.authorize)
        router.add_post(f"{prefix}/authorize/decision", self.decide)
        router.add_post(f"{prefix}/token", self.token)

    def approve(self, params: dict[str, str], user: str) -> web.Response:
        # Whoever signs in becomes an AniList user with an id (the token's `sub`).
        account = self.state.user_named(user, create=True)
        assert account is not None
        if params.get("response_type") == "token":
            # Implicit grant: the token travels in the fragment, as AniList sends it.
            token = self._issue(account.name, account.id)
            fragment = f"access_token={token}&token_type=Bearer&expires_in={TOKEN_TTL}"
            return web.Response(
                status=302, headers={"Location": f"{params['redirect_uri']}#{fragment}"}
            )
        return self.issue_code(params, account.name)

    def _issue(self, name: str, user_id: int) -> str:
        token = jwt_like(user_id)
        self.state.tokens.add(token, name, now() + TOKEN_TTL)
        return token

    def token_body(self, user: str) -> dict[str, Any]:
        account = self.state.user_named(user, create=True)
        assert account is not None
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL,
            "access_token": self._issue(account.name, account.id),
        }


__all__ = ["AniListOAuth", "message_page"]
