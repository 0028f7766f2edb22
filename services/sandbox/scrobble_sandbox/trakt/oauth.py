"""Trakt OAuth: authorize page, code and refresh grants, revoke, and the device flow.

Served on the auth surface (TRAKT_AUTH_URL) and, because older reference pages put OAuth on
the API host, on the API surface too (see EXTERNAL_APIS.md, CONFLICT).
"""

import secrets
import string
from typing import TYPE_CHECKING, Any

from aiohttp import web

from scrobble_sandbox.core import pkce
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.fake import USER_KEY
from scrobble_sandbox.core.http import json_response, read_params
from scrobble_sandbox.core.pages import (
    OOB_REDIRECT,
    consent_page,
    decision_user,
    message_page,
    redirect,
)
from scrobble_sandbox.core.tokens import new_secret
from scrobble_sandbox.credentials import SANDBOX_USER, TRAKT_CLIENT_ID, TRAKT_CLIENT_SECRET
from scrobble_sandbox.trakt.state import (
    ACCESS_TTL,
    CODE_TTL,
    DEVICE_TTL,
    CodeGrant,
    DeviceGrant,
    TraktState,
)

if TYPE_CHECKING:
    from scrobble_sandbox.trakt.fake import TraktFake


def oauth_error(status: int, code: str, description: str) -> web.Response:
    return json_response({"error": code, "error_description": description}, status=status)


def user_code() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))


class TraktOAuth:
    """OAuth handlers; `fake.state` holds the grants and tokens."""

    def __init__(self, fake: "TraktFake") -> None:
        self.fake = fake

    @property
    def state(self) -> TraktState:
        return self.fake.state

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

    # --- authorization code ----------------------------------------------------------------
    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != TRAKT_CLIENT_ID:
            return message_page("Invalid client", "Unknown client_id", status=401)
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri:
            return message_page("Invalid request", "redirect_uri is required", status=400)
        state = q.get("state", "")
        if q.get("response_type") != "code":
            return redirect(redirect_uri, {"error": "unsupported_response_type", "state": state})
        method = q.get("code_challenge_method")
        if q.get("code_challenge") and (method or "plain").upper() not in ("S256", "PLAIN"):
            return redirect(redirect_uri, {"error": "invalid_request", "state": state})
        params = {
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": q.get("code_challenge", ""),
            "code_challenge_method": method or "",
        }
        if self.fake.auto_approve:
            return self._approve(params, q.get("sandbox_user") or SANDBOX_USER)
        return consent_page(
            service="Trakt",
            action=f"{self.fake.url('auth')}/oauth/authorize/decision",
            hidden=params,
            prompt="The sandbox app wants access to your Trakt account.",
        )

    async def decide(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if form.get("decision") != "approve":
            return redirect(
                form.get("redirect_uri", ""),
                {"error": "access_denied", "state": form.get("state", "")},
            )
        return self._approve(form, decision_user(form))

    def _approve(self, params: dict[str, str], user: str) -> web.Response:
        code = new_secret("tc_", 16)
        self.state.codes[code] = CodeGrant(
            user=user,
            redirect_uri=params["redirect_uri"],
            challenge=params.get("code_challenge") or None,
            challenge_method=params.get("code_challenge_method") or None,
            expires_at=now() + CODE_TTL,
        )
        if params["redirect_uri"] == OOB_REDIRECT:
            return message_page("Authorization code", code)
        return redirect(params["redirect_uri"], {"code": code, "state": params.get("state", "")})

    # --- token endpoint --------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        body = await read_params(request)
        if (
            body.get("client_id") != TRAKT_CLIENT_ID
            or body.get("client_secret") != TRAKT_CLIENT_SECRET
        ):
            return oauth_error(401, "invalid_client", "Client authentication failed")
        grant = body.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(request, body)
        if grant == "refresh_token":
            return self._refresh_grant(request, body)
        return oauth_error(400, "unsupported_grant_type", "grant_type is not supported")

    def _code_grant(self, request: web.Request, body: dict[str, str]) -> web.Response:
        grant = self.state.codes.get(body.get("code", ""))
        invalid = oauth_error(
            400, "invalid_grant", "The authorization code is invalid, expired, used or mismatched"
        )
        if grant is None or grant.used or grant.expires_at < now():
            return invalid
        if body.get("redirect_uri") != grant.redirect_uri:
            return invalid
        if grant.challenge is not None and not pkce.verify(
            grant.challenge, grant.challenge_method, body.get("code_verifier")
        ):
            return invalid
        grant.used = True
        request[USER_KEY] = grant.user
        return json_response(self.issue_pair(grant.user))

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
        if (
            body.get("client_id") != TRAKT_CLIENT_ID
            or body.get("client_secret") != TRAKT_CLIENT_SECRET
        ):
            return oauth_error(401, "invalid_client", "Client authentication failed")
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
            user_code=user_code(),
            expires_at=now() + DEVICE_TTL,
            interval=self.state.device_interval,
        )
        if self.fake.auto_approve:
            grant.status, grant.user = "approved", SANDBOX_USER
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
        if (
            body.get("client_id") != TRAKT_CLIENT_ID
            or body.get("client_secret") != TRAKT_CLIENT_SECRET
        ):
            return oauth_error(401, "invalid_client", "Client authentication failed")
        grant = self.state.devices.get(body.get("code", ""))
        if grant is None:
            return json_response({}, status=404)
        at = now()
        too_fast = grant.last_poll is not None and at - grant.last_poll < grant.interval
        grant.last_poll = at
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
        code = request.match_info.get("code") or request.query.get("code", "")
        return consent_page(
            service="Trakt",
            action=f"{self.fake.url('auth')}/activate/decision",
            hidden={},
            fields=[("user_code", "Code shown on your device", code.upper())],
            prompt="Enter the code your device shows, then Approve.",
        )

    async def activate_decide(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        grant = self.find_device(form.get("user_code", ""))
        if grant is None:
            return message_page("Unknown code", "That code is not valid", status=404)
        if form.get("decision") == "approve":
            grant.status, grant.user = "approved", decision_user(form)
            return message_page("Device activated", "You can return to your device.")
        grant.status = "denied"
        return message_page("Device denied", "The device was not activated.")
