"""The connect routes (CONTRACTS section 4):

- ``POST /api/v1/scrobble/connect/{service}``: start a browser flow (a tracker whose flow is
  an authorization code or web auth) and answer ``{authorization_url, state}`` with the
  cookie that binds the flow to this browser (:mod:`.binding`); for a tracker whose user
  pastes a token, check the token with the tracker and answer 201 with the connection.
- ``GET /api/v1/scrobble/{service}/callback``: no bearer token, bound by ``state`` and the
  browser's cookie; spend the state, exchange the code (or the web auth token), store the
  connection with its tokens encrypted, then 303 to the allowed return URL or show a
  "connected" page. Another browser is shown "open this link in the browser that started
  it", and the flow stays open for the browser that did.
- ``POST /api/v1/scrobble/connect/{service}/device`` and ``.../device/poll``: the device
  code flow of a tracker that has one (Trakt), the device code bound to the user who asked
  for it; the answer that connects names the account linked (the flow's account lookup).

Which tracker uses which flow is its folder's declaration (the registry); nothing here
names a tracker.

Every start counts against the user's open flows (``GATEWAY_MAX_OPEN_OAUTH_STATES``); one
more than that drops the oldest (:mod:`.states`).

Failure policy: a bad request is a 4xx problem; a service that fails or is unreachable is a
502 problem (a page for a browser at the callback), except the user's own server (a tracker
each user runs), whose address is the user's input: a 422 naming ``api_url``. Either way no
connection is created and nothing that was sent or received (codes, tokens, secrets) is
logged or answered; log lines carry the service, the user id and an error code or exception
type.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from scrobble_gateway.connect import binding, pages, providers, states
from scrobble_gateway.connect.return_urls import (
    MAX_RETURN_URL_LENGTH,
    allowlist_with_page,
    is_allowed,
)
from scrobble_gateway.connect.revoke import revoke_at_service
from scrobble_gateway.connect.server_urls import refused_server_address
from scrobble_gateway.connect.store import save_connection
from scrobble_gateway.keys import CIPHER, HTTP, POOL, SETTINGS, caller
from scrobble_gateway.problems import problem
from scrobble_gateway.repository import get_connection
from scrobble_gateway.validation import field_error, parse_body
from scrobble_gateway.views import connection_view, json_response
from scrobble_shared.json_limits import json_or_none
from scrobble_shared.service_names import ServiceName
from scrobble_shared.trackers.connect import (
    AuthorizationCode,
    DeviceFlow,
    DevicePoll,
    ExchangeFailed,
    FormRequest,
    GetRequest,
    InvalidUserToken,
    IssuedTokens,
    JsonRequest,
    OAuthApp,
    UserToken,
    WebAuth,
    classify_device_poll,
    code_exchange,
    parse_device_code,
    parse_token_answer,
    parse_web_auth_session,
    web_auth_page,
    web_auth_session_request,
)
from scrobble_shared.trackers.registry import SERVICES
from scrobble_shared.user_tokens import check_user_token

log = logging.getLogger(__name__)

BASE: Final = "/api/v1/scrobble"
routes = web.RouteTableDef()

# Error codes a provider puts in the callback are shown only when they look like one.
_ERROR_CODE: Final = re.compile(r"[a-z_]{1,40}")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrowserConnectBody(_Body):
    return_url: str | None = Field(default=None, max_length=MAX_RETURN_URL_LENGTH)


class TokenConnectBody(_Body):
    # Printable ASCII without spaces: it goes into an Authorization header as it is.
    token: str = Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")
    # The user's own server, for a tracker each user runs themselves.
    api_url: str | None = Field(default=None, min_length=1, max_length=2048)


class DevicePollBody(_Body):
    device_code: str = Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")


# --- helpers ------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def _post_json(request: web.Request, call: JsonRequest) -> tuple[int, Any]:
    answer = await request.app[HTTP].post(
        call.url, json=call.body, headers={"Accept": "application/json"}
    )
    return answer.status_code, json_or_none(answer.content)


async def _post_form(request: web.Request, call: FormRequest) -> tuple[int, Any]:
    answer = await request.app[HTTP].post(call.url, data=call.form)
    return answer.status_code, json_or_none(answer.content)


async def _get_json(request: web.Request, call: GetRequest) -> tuple[int, Any]:
    answer = await request.app[HTTP].get(call.url, headers=call.headers)
    return answer.status_code, json_or_none(answer.content)


def _log_dropped(service: str, user_id: uuid.UUID, dropped: int) -> None:
    if dropped:
        log.info(
            "connect %s for user %s: dropped %d older open flow(s) past the limit",
            service,
            user_id,
            dropped,
        )


def _service(name: str) -> ServiceName | None:
    for service in SERVICES:
        if service == name:
            return service
    return None


def _unknown_service(name: str) -> web.Response:
    return problem(
        404,
        "Unknown service",
        f"{name[:40]!r} is not a service this gateway connects; use one of {', '.join(SERVICES)}",
    )


def _unavailable(request: web.Request, service: ServiceName) -> web.Response | None:
    reason = providers.service_unavailable_reason(request.app[SETTINGS], service)
    if reason is None:
        return None
    return problem(409, f"{providers.title(service)} is not available", reason, service=service)


def _unreachable(service: ServiceName, exc: Exception) -> web.Response:
    log.warning("%s: call failed (%s)", service, type(exc).__name__)
    title = providers.title(service)
    return problem(502, f"{title} did not answer", f"{title} could not be reached; try again")


async def _connection_created(request: web.Request, connection_id: uuid.UUID) -> web.Response:
    row = await get_connection(request.app[POOL], caller(request).user_id, connection_id)
    if row is None:  # disconnected in the meantime
        return problem(409, "Connection removed", "the connection was removed meanwhile")
    return json_response(connection_view(row), status=201)


# --- starting a flow ----------------------------------------------------------------------


@routes.post(f"{BASE}/connect/{{service}}")
async def start_connect(request: web.Request) -> web.Response:
    name = request.match_info["service"]
    service = _service(name)
    if service is None:
        return _unknown_service(name)
    unavailable = _unavailable(request, service)
    if unavailable is not None:
        return unavailable
    user_token = providers.token_flow(service)
    if user_token is not None:
        return await _connect_with_token(request, service, user_token)
    body = await parse_body(request, BrowserConnectBody, optional=True)
    settings = request.app[SETTINGS]
    if body.return_url is not None and not is_allowed(
        body.return_url,
        allowlist_with_page(settings.gateway_return_url_allowlist, settings.gateway_public_url),
    ):
        raise field_error("return_url", "not on this gateway's allow-list of return URLs")
    user_id = caller(request).user_id
    app = None
    if isinstance(providers.flow(service), AuthorizationCode):
        app = providers.oauth_app(settings, service)
    verifier = providers.new_code_verifier() if app is not None and app.pkce else None
    nonce = binding.new_nonce()
    state, dropped = await states.start_flow(
        request.app[POOL],
        request.app[CIPHER],
        user_id=user_id,
        service=service,
        code_verifier=verifier,
        return_url=body.return_url,
        browser_nonce_digest=nonce.digest,
        max_open=settings.gateway_max_open_oauth_states,
    )
    _log_dropped(service, user_id, dropped)
    if app is None:
        callback = providers.callback_url(settings, service)
        url = web_auth_page(settings.tracker(service), callback, state)
    else:
        url = providers.authorization_url(app, state, verifier)
    log.info("connect %s started for user %s", service, user_id)
    response = web.json_response(
        {"authorization_url": url, "state": state}, headers={"Cache-Control": "no-store"}
    )
    # This answer reaches the script of the browser that will open the URL: the cookie
    # it sets is what the callback asks that browser for.
    binding.set_cookie(
        response,
        state=state,
        nonce=nonce,
        callback_url=providers.redirect_uri(settings, service),
        public_url=settings.gateway_public_url,
        lifetime=states.STATE_TTL,
    )
    return response


def _own_api_url(service: ServiceName, flow: UserToken, given: str | None) -> str | None:
    """The user's own server address when the tracker asks for one (else None), or a 422
    naming ``api_url``."""
    if not flow.user_api_url:
        if given is not None:
            raise field_error("api_url", f"{providers.title(service)} takes no address of yours")
        return None
    if given is None:
        raise field_error("api_url", "required: the address of your server")
    reason = refused_server_address(given)
    if reason is not None:
        raise field_error("api_url", reason)
    return given.rstrip("/")


async def _connect_with_token(
    request: web.Request, service: ServiceName, user_token: UserToken
) -> web.Response:
    """A token the user pasted: checked and named by the tracker, then stored."""
    body = await parse_body(request, TokenConnectBody)
    title = providers.title(service)
    own_url = _own_api_url(service, user_token, body.api_url)
    api_url = own_url or request.app[SETTINGS].tracker(service).api_url
    try:
        user_name = await check_user_token(request.app[HTTP], user_token, api_url, body.token)
    except httpx.HTTPError as exc:
        if own_url is not None:
            # The address the user gave, not a tracker of ours, failed: their input.
            log.warning("%s: own server not reached (%s)", service, type(exc).__name__)
            raise field_error("api_url", f"no {title} server could be reached there") from None
        return _unreachable(service, exc)
    except InvalidUserToken:
        return problem(
            400,
            f"Invalid {title} token",
            f"{title} does not accept this token; copy it again from your {title} settings page",
        )
    except ExchangeFailed as exc:
        log.warning("%s: token check failed: %s", service, exc)
        if own_url is not None:
            raise field_error("api_url", f"no {title} server answered there ({exc})") from None
        return problem(502, f"{title} did not answer", "could not check the token; try again")
    tokens = IssuedTokens(body.token, None, None, user_name)
    user_id = caller(request).user_id
    connection_id = await save_connection(
        request.app[POOL],
        request.app[CIPHER],
        user_id=user_id,
        service=service,
        tokens=tokens,
        api_url=own_url,
    )
    log.info("connected %s for user %s (connection %s)", service, user_id, connection_id)
    return await _connection_created(request, connection_id)


# --- the callback -------------------------------------------------------------------------

_STATE_FAILURES: Final[dict[states.StateProblem, tuple[int, str, str]]] = {
    "unknown": (
        400,
        "Sign-in link not recognised",
        "This sign-in link is not one this server started for {title}, or a newer sign-in "
        "replaced it. Start connecting again from the app.",
    ),
    "used": (
        400,
        "Sign-in link already used",
        "This sign-in link has already been used. Start connecting again from the app.",
    ),
    "expired": (
        410,
        "Sign-in link expired",
        "Sign-in links last 10 minutes. Start connecting {title} again from the app.",
    ),
    # Fixed text only: nothing about whose flow it is, nor which account came back.
    "other_browser": (
        403,
        "Opened in another browser",
        "This sign-in was started in another browser. To finish it, open this link in the "
        "browser that started it. If you did not start connecting {title} yourself, close "
        "this page: nothing was connected.",
    ),
}


def _state_failure(request: web.Request, title: str, reason: states.StateProblem) -> web.Response:
    status, heading, detail = _STATE_FAILURES[reason]
    return pages.failure(
        request, status, f"{title} not connected: {heading}", detail.format(title=title)
    )


@routes.get(f"{BASE}/{{service}}/callback")
async def callback(request: web.Request) -> web.Response:
    name = request.match_info["service"]
    service = _service(name)
    if service is None or not providers.in_browser(service):
        return pages.failure(
            request, 404, "Unknown service", "There is no sign-in to finish for this address."
        )
    title = providers.title(service)
    state = request.query.get("state", "")
    if not state:
        return pages.failure(
            request,
            400,
            f"{title} not connected",
            "The answer carries no state, so it cannot be matched to a sign-in you started. "
            "Start connecting again from the app.",
        )
    nonce = request.cookies.get(binding.cookie_name(state))
    error = request.query.get("error")
    if error is not None:
        response = await _provider_refused(request, service, state, nonce, error)
    else:
        response = await _finish(request, service, state, nonce)
    if nonce is not None:
        settings = request.app[SETTINGS]
        binding.clear_cookie(
            response, state=state, callback_url=providers.redirect_uri(settings, service)
        )
    return response


async def _finish(
    request: web.Request, service: ServiceName, state: str, nonce: str | None
) -> web.Response:
    """Spend the state, get the tokens, store the connection: the page or redirect."""
    title = providers.title(service)
    pool, cipher = request.app[POOL], request.app[CIPHER]
    try:
        pending = await states.spend_state(
            pool, cipher, state=state, service=service, browser_nonce=nonce
        )
    except states.StateRejected as exc:
        log.info("%s callback: state %s", service, exc.reason)
        return _state_failure(request, title, exc.reason)
    unavailable = _unavailable(request, service)
    if unavailable is not None:
        return pages.failure(
            request, 409, f"{title} not connected", f"{title} is not available on this server."
        )
    try:
        tokens = await _tokens_from_callback(request, service, pending)
    except _MissingParameter as missing:
        return pages.failure(
            request,
            400,
            f"{title} not connected",
            f"{title} came back without a {missing.name}. Start connecting again from the app.",
        )
    except httpx.HTTPError as exc:
        log.warning("%s callback: call failed (%s)", service, type(exc).__name__)
        return pages.failure(
            request, 502, f"{title} not connected", f"{title} could not be reached; try again."
        )
    except ExchangeFailed as exc:
        log.warning("%s callback for user %s: %s", service, pending.user_id, exc)
        return pages.failure(
            request,
            502,
            f"{title} not connected",
            f"{title} did not complete the sign-in. Start connecting again from the app.",
        )
    connection_id = await save_connection(
        pool, cipher, user_id=pending.user_id, service=service, tokens=tokens
    )
    log.info("connected %s for user %s (connection %s)", service, pending.user_id, connection_id)
    settings = request.app[SETTINGS]
    allowlist = allowlist_with_page(
        settings.gateway_return_url_allowlist, settings.gateway_public_url
    )
    if pending.return_url is not None and is_allowed(pending.return_url, allowlist):
        return web.Response(
            status=303, headers={"Location": pending.return_url, "Cache-Control": "no-store"}
        )
    return pages.connected_page(title, tokens.user_name)


async def _provider_refused(
    request: web.Request, service: ServiceName, state: str, nonce: str | None, error: str
) -> web.Response:
    """The user said no (or the service refused): nothing connected, and the state is
    spent, unless another browser brought the answer (a stranger cannot end the flow)."""
    title = providers.title(service)
    try:
        await states.spend_state(
            request.app[POOL],
            request.app[CIPHER],
            state=state,
            service=service,
            browser_nonce=nonce,
        )
    except states.StateRejected as exc:
        log.info("%s callback with error: state %s", service, exc.reason)
    if error == "access_denied":
        log.info("%s: the user declined access", service)
        return pages.failure(
            request,
            400,
            f"{title} not connected",
            f"You declined access at {title}, so nothing was connected.",
        )
    code = error if _ERROR_CODE.fullmatch(error) else "unknown"
    log.warning("%s callback: the service answered error %s", service, code)
    # 400, not 5xx: the browser brought us the service's refusal; nothing failed on our side.
    return pages.failure(
        request,
        400,
        f"{title} not connected",
        f"{title} refused the sign-in ({code}). Start connecting again from the app.",
    )


class _MissingParameter(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


async def _tokens_from_callback(
    request: web.Request, service: ServiceName, pending: states.PendingConnect
) -> IssuedTokens:
    settings = request.app[SETTINGS]
    flow = providers.flow(service)
    if isinstance(flow, WebAuth):
        token = request.query.get("token")
        if not token:
            raise _MissingParameter("token")
        call = web_auth_session_request(flow, settings.tracker(service), token)
        _, body = await _post_form(request, call)
        return parse_web_auth_session(body)
    code = request.query.get("code")
    if not code:
        raise _MissingParameter("code")
    app = providers.oauth_app(settings, service)
    exchange = code_exchange(app, code, pending.code_verifier)
    status, body = await _post_json(request, exchange)
    return parse_token_answer(status, body, _now())


# --- device code --------------------------------------------------------------------


def _device_of(request: web.Request) -> tuple[ServiceName, DeviceFlow] | web.Response:
    """The tracker of the route and its device flow, or the answer when there is none."""
    name = request.match_info["service"]
    service = _service(name)
    if service is None:
        return _unknown_service(name)
    device = providers.device_flow(service)
    if device is None:
        return problem(404, "No device flow", f"{providers.title(service)} has no device code flow")
    unavailable = _unavailable(request, service)
    if unavailable is not None:
        return unavailable
    return service, device


@routes.post(f"{BASE}/connect/{{service}}/device")
async def start_device(request: web.Request) -> web.Response:
    found = _device_of(request)
    if isinstance(found, web.Response):
        return found
    service, device_flow = found
    title = providers.title(service)
    app = providers.oauth_app(request.app[SETTINGS], service)
    try:
        status, body = await _post_json(request, device_flow.code_request(app))
        device = parse_device_code(status, body)
    except httpx.HTTPError as exc:
        return _unreachable(service, exc)
    except ExchangeFailed as exc:
        log.warning("%s: device code request failed: %s", service, exc)
        return problem(502, f"{title} did not answer", "could not get a device code; try again")
    user_id = caller(request).user_id
    dropped = await states.bind_device_code(
        request.app[POOL],
        user_id=user_id,
        service=service,
        device_code=device.device_code,
        expires_in_s=device.expires_in,
        max_open=request.app[SETTINGS].gateway_max_open_oauth_states,
    )
    _log_dropped(service, user_id, dropped)
    log.info("%s device code issued for user %s", service, user_id)
    return web.json_response(
        {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_url": device.verification_url,
            "expires_in": device.expires_in,
            "interval": device.interval,
        }
    )


_DEVICE_FAILURES: Final[dict[DevicePoll, tuple[int, str, str]]] = {
    DevicePoll.DENIED: (400, "Device code denied", "the user declined access at {title}"),
    DevicePoll.EXPIRED: (410, "Device code expired", "start the device flow again"),
    DevicePoll.INVALID: (400, "Device code not known", "{title} does not know this device code"),
    DevicePoll.USED: (409, "Device code already used", "this device code already gave tokens"),
}


@routes.post(f"{BASE}/connect/{{service}}/device/poll")
async def poll_device(request: web.Request) -> web.Response:
    found = _device_of(request)
    if isinstance(found, web.Response):
        return found
    service, device_flow = found
    title = providers.title(service)
    body = await parse_body(request, DevicePollBody)
    user_id = caller(request).user_id
    pool = request.app[POOL]
    binding = await states.device_binding(
        pool, user_id=user_id, service=service, device_code=body.device_code
    )
    if binding == "missing":
        return problem(404, "Device code not known", "no device flow of yours has this code")
    if binding == "expired":
        await states.finish_device_code(pool, user_id=user_id, device_code=body.device_code)
        return problem(410, "Device code expired", "start the device flow again")
    app = providers.oauth_app(request.app[SETTINGS], service)
    try:
        status, answer = await _post_json(request, device_flow.poll_request(app, body.device_code))
        outcome = classify_device_poll(device_flow, status, answer, _now())
    except httpx.HTTPError as exc:
        return _unreachable(service, exc)
    except ExchangeFailed as exc:
        log.warning("%s: device poll for user %s failed: %s", service, user_id, exc)
        return problem(502, f"{title} did not answer", "could not poll the device code; try again")
    if outcome in (DevicePoll.PENDING, DevicePoll.SLOW_DOWN):
        response = web.json_response({"state": "pending"}, status=202)
        if outcome is DevicePoll.SLOW_DOWN:
            response.headers["Retry-After"] = "5"
        return response
    if isinstance(outcome, DevicePoll):
        await states.finish_device_code(pool, user_id=user_id, device_code=body.device_code)
        status_code, heading, detail = _DEVICE_FAILURES[outcome]
        log.info("%s device flow for user %s ended: %s", service, user_id, outcome.value)
        return problem(status_code, heading, detail.format(title=title))
    if not await states.finish_device_code(pool, user_id=user_id, device_code=body.device_code):
        # Another poll of the same code finished first and stored the connection.
        return problem(409, "Device code already used", "this device code already gave tokens")
    try:
        account = await _named_account(request, service, app, outcome)
    except (httpx.HTTPError, ExchangeFailed) as exc:
        # Whoever typed the code decided which account this is; unnamed, it is not linked.
        log.warning(
            "%s: could not name the device flow's account (%s)", service, type(exc).__name__
        )
        await revoke_at_service(request.app, service, outcome.access_token, outcome.refresh_token)
        return problem(
            502,
            f"{title} did not name the account",
            f"{title} did not say which account was approved, so nothing was connected; "
            "start the device flow again",
        )
    connection_id = await save_connection(
        pool, request.app[CIPHER], user_id=user_id, service=service, tokens=account
    )
    log.info("connected %s (device) for user %s (connection %s)", service, user_id, connection_id)
    return await _connection_created(request, connection_id)


async def _named_account(
    request: web.Request, service: ServiceName, app: OAuthApp, tokens: IssuedTokens
) -> IssuedTokens:
    """``tokens`` with the user name of the account they are for, when the tracker's flow
    can ask (else as they are)."""
    flow = providers.flow(service)
    if not isinstance(flow, AuthorizationCode) or flow.account is None:
        return tokens
    settings = request.app[SETTINGS]
    call = flow.account.request(settings.tracker(service), app, tokens.access_token)
    status, body = await _get_json(request, call)
    return dataclasses.replace(tokens, user_name=flow.account.parse(status, body))
