"""Simkl OAuth: authorize page (SIMKL_AUTH_URL), token exchange and the PIN flow (API host)."""

import secrets
import string
from typing import TYPE_CHECKING

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.fake import USER_KEY
from scrobble_sandbox.core.http import json_response, read_params
from scrobble_sandbox.core.pages import consent_page, decision_user, message_page, redirect
from scrobble_sandbox.core.tokens import new_secret
from scrobble_sandbox.credentials import SANDBOX_USER, SIMKL_CLIENT_ID, SIMKL_CLIENT_SECRET
from scrobble_sandbox.simkl.api import check_client
from scrobble_sandbox.simkl.state import CODE_TTL, PIN_TTL, CodeGrant, PinGrant, SimklState

if TYPE_CHECKING:
    from scrobble_sandbox.simkl.fake import SimklFake


def pin_code() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(5))


class SimklOAuth:
    def __init__(self, fake: "SimklFake") -> None:
        self.fake = fake

    @property
    def state(self) -> SimklState:
        return self.fake.state

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

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != SIMKL_CLIENT_ID:
            return message_page("Invalid client", "Unknown client_id", status=400)
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri:
            return message_page("Invalid request", "redirect_uri is required", status=400)
        if q.get("response_type") != "code":
            return redirect(
                redirect_uri, {"error": "unsupported_response_type", "state": q.get("state", "")}
            )
        params = {"redirect_uri": redirect_uri, "state": q.get("state", "")}
        if self.fake.auto_approve:
            return self._approve(params, q.get("sandbox_user") or SANDBOX_USER)
        return consent_page(
            service="Simkl",
            action=f"{self.fake.url('auth')}/oauth/authorize/decision",
            hidden=params,
            prompt="The sandbox app wants access to your Simkl account.",
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
        code = new_secret("sc_", 16)
        self.state.codes[code] = CodeGrant(user, params["redirect_uri"], now() + CODE_TTL)
        return redirect(params["redirect_uri"], {"code": code, "state": params.get("state", "")})

    async def token(self, request: web.Request) -> web.Response:
        body = await read_params(request)
        if (
            body.get("client_id") != SIMKL_CLIENT_ID
            or body.get("client_secret") != SIMKL_CLIENT_SECRET
        ):
            return json_response({"error": "invalid_client"}, status=401)
        if body.get("grant_type") != "authorization_code":
            return json_response({"error": "unsupported_grant_type"}, status=400)
        grant = self.state.codes.get(body.get("code", ""))
        if (
            grant is None
            or grant.used
            or grant.expires_at < now()
            or grant.redirect_uri != body.get("redirect_uri")
        ):
            return json_response({"error": "invalid_grant"}, status=400)
        grant.used = True
        request[USER_KEY] = grant.user
        # Simkl tokens are long-lived and come without a refresh token.
        token = self.state.tokens.issue(grant.user, None, "st_")
        return json_response(
            {"access_token": token.token, "token_type": "bearer", "scope": "public"}
        )

    # --- PIN flow --------------------------------------------------------------------------
    async def pin(self, request: web.Request) -> web.Response:
        bad = check_client(request)
        if bad is not None:
            return bad
        grant = PinGrant(pin_code(), "DEVICE_CODE", now() + PIN_TTL, self.state.pin_interval)
        if self.fake.auto_approve:
            grant.status, grant.user = "approved", SANDBOX_USER
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
        too_fast = grant.last_poll is not None and at - grant.last_poll < grant.interval
        grant.last_poll = at
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
        code = request.match_info.get("code") or request.query.get("code", "")
        return consent_page(
            service="Simkl",
            action=f"{self.fake.url('auth')}/pin/decision",
            hidden={},
            fields=[("user_code", "Code shown on your device", code.upper())],
            prompt="Enter the code your device shows, then Approve.",
        )

    async def pin_decide(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        grant = self.state.pins.get(form.get("user_code", "").strip().upper())
        if grant is None:
            return message_page("Unknown code", "That code is not valid", status=404)
        if form.get("decision") != "approve":
            grant.expires_at = now() - 1
            return message_page("Denied", "The device was not connected.")
        grant.status, grant.user = "approved", decision_user(form)
        return message_page("Connected", "You can return to your device.")
