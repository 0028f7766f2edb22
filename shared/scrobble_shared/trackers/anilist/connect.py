"""Connecting AniList: OAuth 2 authorization code at ``/api/v2/oauth``. AniList offers no
PKCE (AniList/docs issue 115: "no plans") and documents no revocation."""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.connect import AuthorizationCode, join_url
from scrobble_shared.trackers.tracker import TrackerConfig


def _auth_url(config: TrackerConfig) -> str:
    assert config.auth_url is not None
    return config.auth_url


FLOW: Final = AuthorizationCode(
    authorize_url=lambda config: join_url(_auth_url(config), "/authorize"),
    token_url=lambda config: join_url(_auth_url(config), "/token"),
    pkce=False,
)
