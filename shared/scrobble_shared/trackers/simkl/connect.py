"""Connecting Simkl: OAuth 2 authorization code, the page on its web host and the token
endpoint on its API host. Simkl documents PKCE for public clients with the verifier
*instead of* the secret ("mutually exclusive", api.simkl.org's token reference), so ours
goes without the secret: the verifier, which never leaves the server, proves the same and
also stops a code injected into another flow. Simkl documents no revocation."""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.connect import AuthorizationCode, join_url
from scrobble_shared.trackers.tracker import TrackerConfig


def _auth_url(config: TrackerConfig) -> str:
    assert config.auth_url is not None
    return config.auth_url


FLOW: Final = AuthorizationCode(
    authorize_url=lambda config: join_url(_auth_url(config), "/oauth/authorize"),
    token_url=lambda config: join_url(config.api_url, "/oauth/token"),
    pkce=True,
    pkce_replaces_secret=True,
)
