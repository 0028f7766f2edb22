"""Trakt OAuth: authorize page, code and refresh grants, revoke, and the device flow.

Served on the auth surface (TRAKT_AUTH_URL) and, because older reference pages put OAuth on
the API host, on the API surface too (see EXTERNAL_APIS.md, CONFLICT).
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
from scrobble_sandbox.core.http import json_response, read_params
from scrobble_sandbox.core.oauth import AuthorizationCodeFlow, CodeGrant, GrantHandler
from scrobble_sandbox.core.pages import message_page
from scrobble_sandbox.core.tokens import new_secret
from scrobble_sandbox.credentials import SANDBOX_USER, TRAKT_CLIENT_ID, TRAKT_CLIENT_SECRET
from scrobble_sandbox.trakt.state import ACCESS_TTL, DEVICE_TTL, TraktState


def oauth_error(status: int, code: str, description: str) -> web.Response:
    return json_response({"error": code, "error_description": description}, status=status)


class TraktOAuth(AuthorizationCodeFlow[TraktState]):
    """OAuth handlers; `fake.state` holds the grants and tokens."""

    service = "Trakt"
    prompt = "The sandbox app wants access to your Trakt account."
    client_id = TRAKT_CLIENT_ID
    client_secret = TRAKT_CLIENT_SECRET
    unknown_client_status = 401
    code_prefix = "tc_"
    pkce_policy = pkce.TRAKT
    oob_page = True
    unsupported_grant_text = "grant_type is not supported"
    invalid_code_text = "The authorization code is invalid, expired, used or mismatched"

    @property
    def codes(self) -> dict[str, CodeGrant]:
        return self.state.codes

    def oauth_error(self, status: int, code: str, description: str) -> web.Response:
        return oauth_error(status, code, description)

    def add_routes(self, router: web.UrlDispatcher, prefix: str, *, pages: bool) -> None:
        router.add_post(f"{prefix}/oauth/token", self.token)
        router.add_post(f"{prefix}/oauth/revoke", self.revoke)
        router.add_post(f"{prefix}/oauth/device/code", self.device_code)
        router.add_post(f"{prefix}/oauth/device/token", self.device_token)
        if pages:
            router.add_get(f"{prefix}/oauth/authorize", self.authorize)
            router.add_post(f"{prefix}/oauth/authorize/decision", self.decide)
            router.add_get(f"{prefix}/activate", self.activate_page)
            router.add_get(f"{prefix}/activate/{{code}}", self.activate_page)
            router.add_post(f"{prefix}/activate/decision", self.activate_decide)

    # --- token endpoint --------------------------------------------------------------------
    def extra_grants(self) -> dict[str, GrantHandler]:
        return {"refresh_token": self._refresh_grant}

    def token_body(self, user: str) -> dict[str, Any]:
        return self.issue_pair(user)

    def _refresh_grant(self, request: web.Request, body: dict[str, str]) -> web.Response:
        old = self.state.refresh.pop(body.get("refresh_token", ""), None)
        if old is None:
            return oauth_error(400, "invalid_grant", "The refresh token is invalid or was used")
        old_access, user = old
        # Each refresh kills the old pair: the old access token stops working at once.
        self.state.access.revoke(old_access)
        request[USER_KEY] = user
        return json_response(self.issue_pair(user))

    def issue_pair(self, user: str) -> dict[str, Any]:
        access = self.state.access.issue(user, ACCESS_TTL, "ta_")
        refresh = new_secret("tr_")
        self.state.refresh[refresh] = (access.token, user)
        return {
            "access_token": access.token,
            "token_type": "bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
            "scope": "public",
            "created_at": int(now()),
        }

    async def revoke(self, request: web.Request) -> web.Response:
        body = await read_params(request)
        if not self.client_ok(body):
            return self.bad_client()
        token = body.get("token", "")
        self.state.access.revoke(token)
        for refresh, (access, _) in list(self.state.refresh.items()):
            if token in (access, refresh):
                self.state.refresh.pop(refresh)
                self.state.access.revoke(access)
        # RFC 7009: revoking an unknown token is not an error.
        return json_response({})

    # --- device flow -----------------------------------------------------------------------
    async def device_code(self, request: web.Request) -> web.Response:
        body = await read_params(request)
        if body.get("client_id") != TRAKT_CLIENT_ID:
            return oauth_error(401, "invalid_client", "Unknown client_id")
        grant = DeviceGrant(
            device_code=new_secret("td_"),
            user_code=user_code(8),
            expires_at=now() + DEVICE_TTL,
            interval=self.state.device_interval,
        )
        if self.fake.auto_approve:
            grant.approve(SANDBOX_USER)
        self.state.devices[grant.device_code] = grant
        return json_response(
            {
                "device_code": grant.device_code,
                "user_code": grant.user_code,
                "verification_url": f"{self.fake.url('auth')}/activate",
                "expires_in": DEVICE_TTL,
                "interval": grant.interval,
            }
        )

    async def device_token(self, request: web.Request) -> web.Response:
        body = await read_params(request)
        if not self.client_ok(body):
            return self.bad_client()
        grant = self.state.devices.get(body.get("code", ""))
        if grant is None:
            return json_response({}, status=404)
        at = now()
        too_fast = grant.poll(at)
        if grant.status == "used":
            return json_response({}, status=409)
        if grant.expires_at < at:
            return json_response({}, status=410)
        if grant.status == "denied":
            return json_response({}, status=418)
        if too_fast:
            return json_response({}, status=429)
        if grant.status == "pending" or grant.user is None:
            return json_response({}, status=400)
        grant.status = "used"
        request[USER_KEY] = grant.user
        return json_response(self.issue_pair(grant.user))

    def find_device(self, user_code: str) -> DeviceGrant | None:
        for grant in self.state.devices.values():
            if grant.user_code == user_code.strip().upper():
                return grant
        return None

    async def activate_page(self, request: web.Request) -> web.Response:
        action = f"{self.fake.url('auth')}/activate/decision"
        return activation_page(request, service="Trakt", action=action)

    async def activate_decide(self, request: web.Request) -> web.Response:
        decided = await activation_decision(request, self.find_device)
        if isinstance(decided, web.Response):
            return decided
        grant, user = decided
        if user is not None:
            grant.approve(user)
            return message_page("Device activated", "You can return to your device.")
        grant.status = "denied"
        return message_page("Device denied", "The device was not activated.")
