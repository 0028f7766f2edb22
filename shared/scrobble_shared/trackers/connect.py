"""How a person connects a tracker, as plain values: the three kinds of flow the trackers
use, what each request carries and what each answer means. No network, clock or database:
the gateway sends what is built here and hands the answers back. Each tracker's folder
declares which kind it uses, with its endpoints (``<tracker>/connect.py``).

- :class:`AuthorizationCode`: OAuth 2 authorization code (RFC 6749 4.1), PKCE (S256)
  wherever the tracker takes it, beside the client secret, or instead of it where the
  tracker says they are mutually exclusive (the gateway builds the authorization URL and
  the PKCE values, with authlib). Token requests go as JSON. Optionally a device code
  flow, a call that names the account the tokens are for, and a revocation endpoint.
- :class:`WebAuth`: the Last.fm 2.0 protocol's web auth (Last.fm, Libre.fm): the page URL
  with ``api_key`` and ``cb``, then the signed ``auth.getSession``.
- :class:`UserToken`: the user pastes a token, which the tracker's validation call checks
  and names (ListenBrainz, Maloja).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from scrobble_shared.trackers.tracker import TrackerConfig


class ExchangeFailed(Exception):
    """The tracker did not give tokens; the message is safe to log and show (no secrets)."""


class InvalidUserToken(Exception):
    """The tracker does not know the token the user gave."""


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(url)
    query = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def error_text(body: Any) -> str:
    """A tracker's error code out of its answer, never a description that might echo what
    was sent."""
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:80]
    return "no error code"


# --- what goes out ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonRequest:
    """A POST with a JSON body; the body holds secrets, so it never shows in a repr."""

    url: str
    body: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class FormRequest:
    """A POST with a form body; the form holds secrets, so it never shows in a repr."""

    url: str
    form: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class GetRequest:
    """A GET whose headers carry a token, so they never show in a repr."""

    url: str
    headers: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class IssuedTokens:
    """What a tracker handed over for the user; never printed."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    user_name: str | None = None

    def __repr__(self) -> str:
        return f"IssuedTokens(expires_at={self.expires_at!r}, user_name={self.user_name!r})"


# --- OAuth 2 authorization code --------------------------------------------------------------


@dataclass(frozen=True)
class OAuthApp:
    """One tracker's OAuth client registration and endpoints, as configured here."""

    service: str
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    pkce: bool
    # A token request with a verifier must not also carry the secret (Simkl).
    pkce_replaces_secret: bool = False


@dataclass(frozen=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    expires_in: int
    interval: int


class DevicePoll(Enum):
    """What a poll of a device token endpoint means (RFC 8628 as Trakt answers it)."""

    PENDING = "pending"
    SLOW_DOWN = "slow_down"
    INVALID = "invalid"
    USED = "used"
    EXPIRED = "expired"
    DENIED = "denied"


@dataclass(frozen=True)
class DeviceFlow:
    """A device code flow: the code request, the poll and what each poll answer means."""

    code_request: Callable[[OAuthApp], JsonRequest]
    poll_request: Callable[[OAuthApp, str], JsonRequest]
    statuses: dict[int, DevicePoll]


@dataclass(frozen=True)
class AccountLookup:
    """The call that names the account a token is for (a device flow's user typed the code
    somewhere we cannot see, so the confirmation must say whose account it was)."""

    request: Callable[[TrackerConfig, OAuthApp, str], GetRequest]
    parse: Callable[[int, Any], str]


@dataclass(frozen=True)
class AuthorizationCode:
    """OAuth 2 authorization code with the tracker's endpoints (module docstring)."""

    # The authorize page and the token endpoint, from the tracker's configured URLs.
    authorize_url: Callable[[TrackerConfig], str]
    token_url: Callable[[TrackerConfig], str]
    pkce: bool
    pkce_replaces_secret: bool = False
    # A setting holding the redirect URI registered with the tracker's app, which then
    # replaces the gateway's callback URL (Trakt: TRAKT_REDIRECT_URI).
    redirect_setting: str | None = None
    device: DeviceFlow | None = None
    account: AccountLookup | None = None
    # Revoking a token when its user disconnects (best effort), if the tracker offers it.
    revoke: Callable[[OAuthApp, str], JsonRequest] | None = None


def code_exchange(app: OAuthApp, code: str, code_verifier: str | None) -> JsonRequest:
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "redirect_uri": app.redirect_uri,
    }
    if code_verifier is not None:
        body["code_verifier"] = code_verifier
        if app.pkce_replaces_secret:
            del body["client_secret"]
    return JsonRequest(app.token_url, body)


def parse_token_answer(status: int, body: Any, now: datetime) -> IssuedTokens:
    """Tokens out of a token endpoint's answer, or :class:`ExchangeFailed`."""
    if status != 200 or not isinstance(body, dict):
        raise ExchangeFailed(f"token endpoint answered {status} ({error_text(body)})")
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise ExchangeFailed("token endpoint answered without an access token")
    refresh = body.get("refresh_token")
    expires_in = body.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        expires_at = now + timedelta(seconds=float(expires_in))
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
    )


def parse_device_code(status: int, body: Any) -> DeviceCode:
    if status != 200 or not isinstance(body, dict):
        raise ExchangeFailed(f"device code endpoint answered {status} ({error_text(body)})")
    try:
        return DeviceCode(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_url=str(body["verification_url"]),
            expires_in=int(body["expires_in"]),
            interval=int(body["interval"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ExchangeFailed("device code endpoint answered without the expected fields") from None


def classify_device_poll(
    flow: DeviceFlow, status: int, body: Any, now: datetime
) -> IssuedTokens | DevicePoll:
    """Tokens when the user approved, else what the status says."""
    if status == 200:
        return parse_token_answer(status, body, now)
    found = flow.statuses.get(status)
    if found is None:
        raise ExchangeFailed(f"device token endpoint answered {status} ({error_text(body)})")
    return found


# --- the Last.fm 2.0 protocol's web auth -----------------------------------------------------


@dataclass(frozen=True)
class WebAuth:
    """Web auth of the Last.fm 2.0 protocol: the page at the tracker's auth URL with
    ``api_key`` and ``cb``; the tracker calls ``cb`` back with ``token`` added (our state
    rides along in ``cb``); the signed ``auth.getSession`` at its API URL gives the session
    key, kept as the access token, and the user name."""

    sign: Callable[[dict[str, str], str], str]


def web_auth_page(config: TrackerConfig, callback: str, state: str) -> str:
    if not config.app.client_id:
        raise ExchangeFailed(f"{config.name} has no API key")
    back = with_query(callback, {"state": state})
    assert config.auth_url is not None
    return with_query(config.auth_url, {"api_key": config.app.client_id, "cb": back})


def web_auth_session_request(flow: WebAuth, config: TrackerConfig, token: str) -> FormRequest:
    """The signed ``auth.getSession`` call, every parameter in a form body."""
    if not config.app.client_id or not config.app.client_secret:
        raise ExchangeFailed(f"{config.name} has no API key and secret")
    params = {"method": "auth.getSession", "api_key": config.app.client_id, "token": token}
    signature = flow.sign(params, config.app.client_secret)
    return FormRequest(config.api_url, {**params, "api_sig": signature, "format": "json"})


def parse_web_auth_session(body: Any) -> IssuedTokens:
    """The session key (stored as the access token) and the user name; the protocol puts
    its errors in the body whatever the HTTP status."""
    if isinstance(body, dict) and isinstance(body.get("session"), dict):
        session = body["session"]
        key, name = session.get("key"), session.get("name")
        if isinstance(key, str) and key:
            return IssuedTokens(key, None, None, name if isinstance(name, str) else None)
    if isinstance(body, dict) and "error" in body:
        raise ExchangeFailed(f"error {body.get('error')}")
    raise ExchangeFailed("answered without a session")


# --- a token the user pastes -----------------------------------------------------------------


@dataclass(frozen=True)
class UserToken:
    """The user gives a token; ``validate`` builds the call that checks it (from the API
    URL it is for) and ``parse`` reads the answer: the account's name (None when the
    tracker names nobody), or :class:`InvalidUserToken`, or :class:`ExchangeFailed` when
    the tracker failed rather than the token."""

    validate: Callable[[str, str], GetRequest]
    parse: Callable[[int, Any], str | None]
    # Where a person finds the token, completing "Copy it from ...".
    where: str
    # The user also gives the tracker's address (a self-hosted server of their own).
    user_api_url: bool = False


ConnectFlow = AuthorizationCode | WebAuth | UserToken
