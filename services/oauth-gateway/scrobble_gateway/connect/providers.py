"""A tracker's connect flow on this install, as plain values: the flow its folder declares
(``scrobble_shared.trackers.connect``: authorization code, web auth, a token the user
pastes) with this gateway's callback URLs and the app credentials of the settings. No
network, no clock, no database: the handlers send what is built here and hand the answers
back. Which tracker uses which flow is the registry's to say, never this module's.
"""

from __future__ import annotations

from typing import Final

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings
from scrobble_shared.trackers.connect import (
    AuthorizationCode,
    ConnectFlow,
    DeviceFlow,
    OAuthApp,
    UserToken,
    WebAuth,
)
from scrobble_shared.trackers.registry import tracker

CALLBACK_PATH: Final = "/api/v1/scrobble/{service}/callback"
# RFC 7636: 43 to 128 characters; authlib draws them from letters and digits.
CODE_VERIFIER_LENGTH: Final = 64


class ServiceUnavailable(Exception):
    """The tracker cannot be connected on this install; the message says why (no secrets)."""


def title(service: ServiceName) -> str:
    """The tracker as people write it: "Last.fm"."""
    return tracker(service).title


def flow(service: ServiceName) -> ConnectFlow:
    return tracker(service).connect


def in_browser(service: ServiceName) -> bool:
    """Whether connecting goes through the tracker's pages in a browser (and comes back to
    the callback), rather than a token the user pastes."""
    return isinstance(flow(service), AuthorizationCode | WebAuth)


def token_flow(service: ServiceName) -> UserToken | None:
    found = flow(service)
    return found if isinstance(found, UserToken) else None


def device_flow(service: ServiceName) -> DeviceFlow | None:
    found = flow(service)
    return found.device if isinstance(found, AuthorizationCode) else None


def service_unavailable_reason(settings: Settings, service: ServiceName) -> str | None:
    """Why ``service`` is switched off here, or None when it can be connected."""
    name = title(service)
    if not settings.scrobble_enabled:
        return "scrobbling is switched off on this server"
    if not settings.tracker_enabled(service):
        return f"{name} is switched off on this server"
    if settings.missing_credentials(service):
        return f"{name} is not configured on this server (no app credentials)"
    return None


def callback_url(settings: Settings, service: ServiceName) -> str:
    """The gateway's public callback route of ``service``."""
    base = settings.gateway_public_url.rstrip("/")
    return base + CALLBACK_PATH.format(service=service)


def redirect_uri(settings: Settings, service: ServiceName) -> str:
    """Where the tracker sends the browser back: the callback route, or the redirect URI
    registered with the tracker's app when its flow names a setting for one and it is set
    (Trakt: ``TRAKT_REDIRECT_URI``)."""
    found = flow(service)
    if isinstance(found, AuthorizationCode) and found.redirect_setting is not None:
        registered = settings.tracker(service).extra.get(found.redirect_setting)
        if registered:
            return registered
    return callback_url(settings, service)


def oauth_app(settings: Settings, service: ServiceName) -> OAuthApp:
    """The OAuth app of ``service`` on this install; the caller checked it is on."""
    found = flow(service)
    if not isinstance(found, AuthorizationCode):
        raise ServiceUnavailable(f"{title(service)} does not use OAuth")
    config = settings.tracker(service)
    if not config.app.client_id or not config.app.client_secret:
        raise ServiceUnavailable(f"{title(service)} has no app credentials")
    return OAuthApp(
        service,
        authorize_url=found.authorize_url(config),
        token_url=found.token_url(config),
        client_id=config.app.client_id,
        client_secret=config.app.client_secret,
        redirect_uri=redirect_uri(settings, service),
        pkce=found.pkce,
        pkce_replaces_secret=found.pkce_replaces_secret,
    )


def new_code_verifier() -> str:
    return str(generate_token(CODE_VERIFIER_LENGTH))


def authorization_url(app: OAuthApp, state: str, code_verifier: str | None) -> str:
    """The authorize page URL; with a verifier, the S256 challenge goes along (authlib)."""
    extra: dict[str, str] = {}
    if code_verifier is not None:
        extra["code_challenge"] = str(create_s256_code_challenge(code_verifier))
        extra["code_challenge_method"] = "S256"
    return str(
        prepare_grant_uri(
            app.authorize_url, app.client_id, "code", app.redirect_uri, state=state, **extra
        )
    )
