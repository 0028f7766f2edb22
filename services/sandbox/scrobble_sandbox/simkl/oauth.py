"""Simkl OAuth: authorize page (SIMKL_AUTH_URL), token exchange and the PIN flow (API host).

The token endpoint serves two flows, told apart by what the client sends (api.simkl.org,
"Exchange code for token"): a confidential client's ``client_secret``, or a public client's
PKCE ``code_verifier``, "mutually exclusive" (both at once: refused here, an inference). A
code issued with a challenge is redeemed only with its verifier; a failed check, like a
wrong secret, is a 401.
"""

from typing import Any

from aiohttp import web

from scrobble_sandbox.core import pkce
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.device import (
    DeviceGrant,
    activation_decision,
    activation_page,
    user_code,
)
from scrobble_sandbox.core.fake import USER_KEY
from scrobble_sandbox.core.http import json_response
from scrobble_sandbox.core.oauth import AuthorizationCodeFlow, CodeGrant
from scrobble_sandbox.core.pages import message_page
from scrobble_sandbox.credentials import SANDBOX_USER, SIMKL_CLIENT_ID, SIMKL_CLIENT_SECRET
from scrobble_sandbox.simkl.api import check_client
from scrobble_sandbox.simkl.state import PIN_TTL, SimklState


class SimklOAuth(AuthorizationCodeFlow[SimklState]):
    service = "Simkl"
    prompt = "The sandbox app wants access to your Simkl account."
    client_id = SIMKL_CLIENT_ID
    client_secret = SIMKL_CLIENT_SECRET
    code_prefix = "sc_"
    pkce_policy = pkce.SIMKL

    @property
    def codes(self) -> dict[str, CodeGrant]:
        return self.state.codes

    def oauth_error(self, status: int, code: str, description: str) -> web.Response:
        # Simkl's token endpoint answers a bare {"error": ...}, without a description.
        return json_response({"error": code}, status=status)

    def authenticate(self, body: dict[str, str]) -> web.Response | None:
        if body.get("client_id") != self.client_id:
            return self.bad_client()
        secret, verifier = body.get("client_secret"), body.get("code_verifier")
        if secret and verifier:
            return self.oauth_error(400, "invalid_request", "client_secret or code_verifier")
        if verifier:
            return None  # a public client: the code's challenge is checked when redeemed
        return None if secret == self.client_secret else self.bad_client()

    def pkce_failed(self) -> web.Response:
        # "401 secret_error (PKCE verification failed)"; the same for a secret-only
        # exchange of a code that was issued with a challenge.
        return self.oauth_error(401, "secret_error", "PKCE verification failed")

    def verifier_fits(self, grant: CodeGrant, verifier: str | None) -> bool:
        if grant.challenge is None:
            return verifier is None  # then the secret authenticated the client
        return grant.proven_by(verifier)

    def add_routes(self, router: web.UrlDispatcher, api: str, auth: str) -> None:
        router.add_post(f"{api}/oauth/token", self.token)
        router.add_get(f"{api}/oauth/pin", self.pin)
        router.add_get(f"{api}/oauth/pin/{{code}}", self.pin_poll)
        router.add_get(f"{auth}/oauth/authorize", self.authorize)
        router.add_post(f"{auth}/oauth/authorize/decision", self.decide)
        router.add_get(f"{auth}/pin", self.pin_page)
        router.add_get(f"{auth}/pin/", self.pin_page)
        router.add_get(f"{auth}/pin/{{code}}", self.pin_page)
        router.add_post(f"{auth}/pin/decision", self.pin_decide)

    def token_body(self, user: str) -> dict[str, Any]:
        # Simkl tokens are long-lived and come without a refresh token.
        token = self.state.tokens.issue(user, None, "st_")
        return {"access_token": token.token, "token_type": "bearer", "scope": "public"}

    # --- PIN flow --------------------------------------------------------------------------
    async def pin(self, request: web.Request) -> web.Response:
        bad = check_client(request)
        if bad is not None:
            return bad
        grant = DeviceGrant(
            device_code="DEVICE_CODE",
            user_code=user_code(5),
            expires_at=now() + PIN_TTL,
            interval=self.state.pin_interval,
        )
        if self.fake.auto_approve:
            grant.approve(SANDBOX_USER)
        self.state.pins[grant.user_code] = grant
        return json_response(
            {
                "result": "OK",
                "device_code": grant.device_code,
                "user_code": grant.user_code,
                "verification_url": f"{self.fake.url('auth')}/pin",
                "expires_in": PIN_TTL,
                "interval": grant.interval,
            }
        )

    async def pin_poll(self, request: web.Request) -> web.Response:
        bad = check_client(request)
        if bad is not None:
            return bad
        grant = self.state.pins.get(request.match_info["code"].upper())
        if grant is None or grant.status == "used":
            return json_response({"result": "KO", "message": "Code not found"})
        at = now()
        too_fast = grant.poll(at)
        if grant.expires_at < at:
            return json_response({"result": "KO", "message": "Code expired"})
        if too_fast:
            return json_response({"result": "KO", "message": "Slow down"})
        if grant.status == "pending" or grant.user is None:
            return json_response({"result": "KO", "message": "Authorization pending"})
        grant.status = "used"
        request[USER_KEY] = grant.user
        token = self.state.tokens.issue(grant.user, None, "st_")
        return json_response({"result": "OK", "access_token": token.token})

    async def pin_page(self, request: web.Request) -> web.Response:
        action = f"{self.fake.url('auth')}/pin/decision"
        return activation_page(request, service="Simkl", action=action)

    async def pin_decide(self, request: web.Request) -> web.Response:
        decided = await activation_decision(request, self.state.pins.get)
        if isinstance(decided, web.Response):
            return decided
        grant, user = decided
        if user is None:
            # Simkl has no "denied" answer for a poll: a refused PIN just expires.
            grant.expires_at = now() - 1
            return message_page("Denied", "The device was not connected.")
        grant.approve(user)
        return message_page("Connected", "You can return to your device.")
