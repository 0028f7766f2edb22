"""What each service's sign-in looks like, as plain values: where the browser goes, what the
token request carries, what the answers mean. No network, no clock, no database: the
handlers send what is built here and hand the answers back.

- Trakt, Simkl, AniList: OAuth 2 authorization code (RFC 6749 4.1). Authorization URLs and
  PKCE values come from authlib. PKCE (S256) wherever the service takes it:
  Trakt (supported on the live API since 2023, trakt/trakt-api issue 367) takes the
  verifier beside the client secret; Simkl documents PKCE for public clients, the verifier
  *instead of* the secret ("mutually exclusive", api.simkl.org's token reference), so ours
  goes without the secret: the verifier, which never leaves the server, proves the same and
  also stops a code injected into another flow. AniList offers no PKCE (AniList/docs issue
  115: "no plans"). Token requests go as JSON, as all three document them.
- Trakt device code: the code request, the poll, what each poll status means, and the user
  settings call that names the account the tokens are for.
- Last.fm web auth: the page URL with ``api_key`` and ``cb``; the signed ``auth.getSession``.
- ListenBrainz: ``validate-token`` with the user's token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

from scrobble_shared.lastfm_signature import sign
from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings

CALLBACK_PATH: Final = "/api/v1/scrobble/{service}/callback"
OAUTH_SERVICES: Final[tuple[ServiceName, ...]] = ("trakt", "simkl", "anilist")
BROWSER_SERVICES: Final[tuple[ServiceName, ...]] = ("trakt", "simkl", "anilist", "lastfm")
TITLES: Final[dict[str, str]] = {
    "trakt": "Trakt",
    "simkl": "Simkl",
    "anilist": "AniList",
    "lastfm": "Last.fm",
    "listenbrainz": "ListenBrainz",
}
# RFC 7636: 43 to 128 characters; authlib draws them from letters and digits.
CODE_VERIFIER_LENGTH: Final = 64


class ServiceUnavailable(Exception):
    """The service cannot be connected on this install; the message says why (no secrets)."""


def service_unavailable_reason(settings: Settings, service: ServiceName) -> str | None:
    """Why ``service`` is switched off here, or None when it can be connected."""
    if not settings.scrobble_enabled:
        return "scrobbling is switched off on this server"
    if not getattr(settings, f"{service}_enabled"):
        return f"{TITLES[service]} is switched off on this server"
    if settings.missing_credentials(service):
        return f"{TITLES[service]} is not configured on this server (no app credentials)"
    return None


def callback_url(settings: Settings, service: ServiceName) -> str:
    """The gateway's public callback route of ``service``."""
    base = settings.gateway_public_url.rstrip("/")
    return base + CALLBACK_PATH.format(service=service)


def redirect_uri(settings: Settings, service: ServiceName) -> str:
    """Where the service sends the browser back: the callback route, or for Trakt the
    redirect URI registered with its app when one is set (``TRAKT_REDIRECT_URI``)."""
    if service == "trakt" and settings.trakt_redirect_uri:
        return settings.trakt_redirect_uri
    return callback_url(settings, service)


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


@dataclass(frozen=True)
class OAuthApp:
    """One service's OAuth client registration and endpoints."""

    service: ServiceName
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    pkce: bool
    # Simkl: a token request with a verifier must not also carry the secret.
    pkce_replaces_secret: bool = False


def oauth_app(settings: Settings, service: ServiceName) -> OAuthApp:
    """The OAuth app of ``service`` (trakt, simkl or anilist); the caller checked it is on."""
    config = settings.service(service)
    if config.client_id is None or config.client_secret is None:
        raise ServiceUnavailable(f"{TITLES[service]} has no app credentials")
    secret = config.client_secret.get_secret_value()
    back_to = redirect_uri(settings, service)
    if service == "trakt":
        auth = settings.trakt_auth_url
        return OAuthApp(
            service,
            authorize_url=_join(auth, "/oauth/authorize"),
            token_url=_join(auth, "/oauth/token"),
            client_id=config.client_id,
            client_secret=secret,
            redirect_uri=back_to,
            pkce=True,
        )
    if service == "simkl":
        return OAuthApp(
            service,
            authorize_url=_join(settings.simkl_auth_url, "/oauth/authorize"),
            token_url=_join(settings.simkl_api_url, "/oauth/token"),
            client_id=config.client_id,
            client_secret=secret,
            redirect_uri=back_to,
            pkce=True,
            pkce_replaces_secret=True,
        )
    if service == "anilist":
        return OAuthApp(
            service,
            authorize_url=_join(settings.anilist_auth_url, "/authorize"),
            token_url=_join(settings.anilist_auth_url, "/token"),
            client_id=config.client_id,
            client_secret=secret,
            redirect_uri=back_to,
            pkce=False,
        )
    raise ServiceUnavailable(f"{TITLES[service]} does not use OAuth")


def new_code_verifier() -> str:
    return str(generate_token(CODE_VERIFIER_LENGTH))


def authorization_url(app: OAuthApp, state: str, code_verifier: str | None) -> str:
    """The authorize page URL; with a verifier, the S256 challenge goes along."""
    extra: dict[str, str] = {}
    if code_verifier is not None:
        extra["code_challenge"] = str(create_s256_code_challenge(code_verifier))
        extra["code_challenge_method"] = "S256"
    return str(
        prepare_grant_uri(
            app.authorize_url, app.client_id, "code", app.redirect_uri, state=state, **extra
        )
    )


@dataclass(frozen=True)
class JsonRequest:
    """A POST with a JSON body; the body holds secrets, so it never shows in a repr."""

    url: str
    body: dict[str, str] = field(repr=False)


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


@dataclass(frozen=True)
class IssuedTokens:
    """What a service handed over for the user; never printed."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    user_name: str | None = None

    def __repr__(self) -> str:
        return f"IssuedTokens(expires_at={self.expires_at!r}, user_name={self.user_name!r})"


class ExchangeFailed(Exception):
    """The service did not give tokens; the message is safe to log and show (no secrets)."""


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                # An error code, not a description that might echo what was sent.
                return value[:80]
    return "no error code"


def parse_token_answer(status: int, body: Any, now: datetime) -> IssuedTokens:
    """Tokens out of a token endpoint's answer, or :class:`ExchangeFailed`."""
    if status != 200 or not isinstance(body, dict):
        raise ExchangeFailed(f"token endpoint answered {status} ({_error_text(body)})")
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


# --- Trakt device code ---------------------------------------------------------------------


def trakt_device_code_request(app: OAuthApp) -> JsonRequest:
    return JsonRequest(_join(_auth_base(app), "/oauth/device/code"), {"client_id": app.client_id})


def trakt_device_poll_request(app: OAuthApp, device_code: str) -> JsonRequest:
    body = {"code": device_code, "client_id": app.client_id, "client_secret": app.client_secret}
    return JsonRequest(_join(_auth_base(app), "/oauth/device/token"), body)


def _auth_base(app: OAuthApp) -> str:
    return app.token_url.removesuffix("/oauth/token")


@dataclass(frozen=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    expires_in: int
    interval: int


def parse_device_code(status: int, body: Any) -> DeviceCode:
    if status != 200 or not isinstance(body, dict):
        raise ExchangeFailed(f"device code endpoint answered {status} ({_error_text(body)})")
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


class DevicePoll(Enum):
    """What a poll of Trakt's device token endpoint means (EXTERNAL_APIS.md)."""

    PENDING = "pending"
    SLOW_DOWN = "slow_down"
    INVALID = "invalid"
    USED = "used"
    EXPIRED = "expired"
    DENIED = "denied"


_DEVICE_STATUSES: Final[dict[int, DevicePoll]] = {
    400: DevicePoll.PENDING,
    404: DevicePoll.INVALID,
    409: DevicePoll.USED,
    410: DevicePoll.EXPIRED,
    418: DevicePoll.DENIED,
    429: DevicePoll.SLOW_DOWN,
}


def classify_device_poll(status: int, body: Any, now: datetime) -> IssuedTokens | DevicePoll:
    """Tokens when the user approved, else what the status says."""
    if status == 200:
        return parse_token_answer(status, body, now)
    found = _DEVICE_STATUSES.get(status)
    if found is None:
        raise ExchangeFailed(f"device token endpoint answered {status} ({_error_text(body)})")
    return found


@dataclass(frozen=True)
class GetRequest:
    """A GET whose headers carry a token, so they never show in a repr."""

    url: str
    headers: dict[str, str] = field(repr=False)


def trakt_user_settings_request(settings: Settings, app: OAuthApp, access_token: str) -> GetRequest:
    """``GET /users/settings`` with the user's new token: whose account it is."""
    return GetRequest(
        _join(settings.trakt_api_url, "/users/settings"),
        {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "trakt-api-key": app.client_id,
            "trakt-api-version": "2",
            "Authorization": f"Bearer {access_token}",
        },
    )


def parse_trakt_user_settings(status: int, body: Any) -> str:
    """The account's user name (``user.username``), or :class:`ExchangeFailed`."""
    user = body.get("user") if status == 200 and isinstance(body, dict) else None
    name = user.get("username") if isinstance(user, dict) else None
    if not isinstance(name, str) or not name:
        raise ExchangeFailed(f"user settings answered {status} without a user name")
    return name


# --- Trakt revoke ------------------------------------------------------------------------


def trakt_revoke_request(app: OAuthApp, token: str) -> JsonRequest:
    body = {"token": token, "client_id": app.client_id, "client_secret": app.client_secret}
    return JsonRequest(_join(_auth_base(app), "/oauth/revoke"), body)


# --- Last.fm web auth --------------------------------------------------------------------


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(url)
    query = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def lastfm_callback_url(settings: Settings, state: str) -> str:
    """Last.fm calls ``cb`` back with ``token`` added; our state rides along in it."""
    return with_query(callback_url(settings, "lastfm"), {"state": state})


def lastfm_authorization_url(settings: Settings, state: str) -> str:
    if not settings.lastfm_api_key:
        raise ServiceUnavailable("Last.fm has no API key")
    params = {"api_key": settings.lastfm_api_key, "cb": lastfm_callback_url(settings, state)}
    return with_query(settings.lastfm_auth_url, params)


@dataclass(frozen=True)
class FormRequest:
    url: str
    form: dict[str, str] = field(repr=False)


def lastfm_session_request(settings: Settings, token: str) -> FormRequest:
    """The signed ``auth.getSession`` call, every parameter in a form body."""
    if not settings.lastfm_api_key or settings.lastfm_api_secret is None:
        raise ServiceUnavailable("Last.fm has no API key and secret")
    params = {"method": "auth.getSession", "api_key": settings.lastfm_api_key, "token": token}
    signature = sign(params, settings.lastfm_api_secret.get_secret_value())
    return FormRequest(settings.lastfm_api_url, {**params, "api_sig": signature, "format": "json"})


def parse_lastfm_session(body: Any) -> IssuedTokens:
    """The session key (stored as the access token) and the user name; Last.fm puts its
    errors in the body whatever the HTTP status."""
    if isinstance(body, dict) and isinstance(body.get("session"), dict):
        session = body["session"]
        key, name = session.get("key"), session.get("name")
        if isinstance(key, str) and key:
            return IssuedTokens(key, None, None, name if isinstance(name, str) else None)
    if isinstance(body, dict) and "error" in body:
        raise ExchangeFailed(f"Last.fm error {body.get('error')}")
    raise ExchangeFailed("Last.fm answered without a session")


# --- ListenBrainz ------------------------------------------------------------------------


class InvalidUserToken(Exception):
    """ListenBrainz does not know the token the user gave."""


def listenbrainz_validate_url(settings: Settings) -> str:
    return _join(settings.listenbrainz_api_url, "/validate-token")


def parse_validate_token(status: int, body: Any) -> str | None:
    """The user name of a valid token (None when ListenBrainz names nobody), or
    :class:`InvalidUserToken`.

    ListenBrainz answers 200 ``valid: false`` for an unknown token (a 401 means the same);
    anything else is the service failing, not the token.
    """
    if status == 401:
        raise InvalidUserToken
    if status != 200 or not isinstance(body, dict):
        raise ExchangeFailed(f"validate-token answered {status} ({_error_text(body)})")
    if body.get("valid") is not True:
        raise InvalidUserToken
    name = body.get("user_name")
    return name if isinstance(name, str) and name else None
