"""Connecting Trakt: OAuth 2 authorization code at its auth host, with PKCE beside the client
secret (supported on the live API since 2023, trakt/trakt-api issue 367); the device code
flow for devices without a browser; ``GET /users/settings`` to name the account a device
flow's tokens are for; ``POST /oauth/revoke`` when its user disconnects (revoking the
access token ends its pair)."""

from __future__ import annotations

from typing import Any, Final

from scrobble_shared.trackers.connect import (
    AccountLookup,
    AuthorizationCode,
    DeviceFlow,
    DevicePoll,
    ExchangeFailed,
    GetRequest,
    JsonRequest,
    OAuthApp,
    join_url,
)
from scrobble_shared.trackers.tracker import TrackerConfig

REDIRECT_SETTING: Final = "TRAKT_REDIRECT_URI"

# What a poll of the device token endpoint answers (EXTERNAL_APIS.md).
DEVICE_STATUSES: Final[dict[int, DevicePoll]] = {
    400: DevicePoll.PENDING,
    404: DevicePoll.INVALID,
    409: DevicePoll.USED,
    410: DevicePoll.EXPIRED,
    418: DevicePoll.DENIED,
    429: DevicePoll.SLOW_DOWN,
}


def _auth_base(app: OAuthApp) -> str:
    return app.token_url.removesuffix("/oauth/token")


def device_code_request(app: OAuthApp) -> JsonRequest:
    return JsonRequest(
        join_url(_auth_base(app), "/oauth/device/code"), {"client_id": app.client_id}
    )


def device_poll_request(app: OAuthApp, device_code: str) -> JsonRequest:
    body = {"code": device_code, "client_id": app.client_id, "client_secret": app.client_secret}
    return JsonRequest(join_url(_auth_base(app), "/oauth/device/token"), body)


def user_settings_request(config: TrackerConfig, app: OAuthApp, access_token: str) -> GetRequest:
    """``GET /users/settings`` with the user's new token: whose account it is."""
    return GetRequest(
        join_url(config.api_url, "/users/settings"),
        {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "trakt-api-key": app.client_id,
            "trakt-api-version": "2",
            "Authorization": f"Bearer {access_token}",
        },
    )


def parse_user_settings(status: int, body: Any) -> str:
    """The account's user name (``user.username``), or :class:`ExchangeFailed`."""
    user = body.get("user") if status == 200 and isinstance(body, dict) else None
    name = user.get("username") if isinstance(user, dict) else None
    if not isinstance(name, str) or not name:
        raise ExchangeFailed(f"user settings answered {status} without a user name")
    return name


def revoke_request(app: OAuthApp, token: str) -> JsonRequest:
    body = {"token": token, "client_id": app.client_id, "client_secret": app.client_secret}
    return JsonRequest(join_url(_auth_base(app), "/oauth/revoke"), body)


def _auth_url(config: TrackerConfig) -> str:
    assert config.auth_url is not None
    return config.auth_url


FLOW: Final = AuthorizationCode(
    authorize_url=lambda config: join_url(_auth_url(config), "/oauth/authorize"),
    token_url=lambda config: join_url(_auth_url(config), "/oauth/token"),
    pkce=True,
    redirect_setting=REDIRECT_SETTING,
    device=DeviceFlow(device_code_request, device_poll_request, DEVICE_STATUSES),
    account=AccountLookup(user_settings_request, parse_user_settings),
    revoke=revoke_request,
)
