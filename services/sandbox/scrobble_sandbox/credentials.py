"""Fixed app credentials and the universal user token that every fake accepts.

They are public on purpose: the sandbox only listens on loopback and holds test data, and
fixed values let a shell, a test and a service configured by `scrobble sandbox` agree.
"""

from typing import Final

TRAKT_CLIENT_ID: Final = "sandbox-trakt-client-id"
TRAKT_CLIENT_SECRET: Final = "sandbox-trakt-client-secret"
LASTFM_API_KEY: Final = "sandbox-lastfm-api-key"
LASTFM_API_SECRET: Final = "sandbox-lastfm-api-secret"
SIMKL_CLIENT_ID: Final = "sandbox-simkl-client-id"
SIMKL_CLIENT_SECRET: Final = "sandbox-simkl-client-secret"
# AniList client ids are integers; a client may parse it as one.
ANILIST_CLIENT_ID: Final = "4242"
ANILIST_CLIENT_SECRET: Final = "sandbox-anilist-client-secret"

# A UUID, because ListenBrainz user tokens are UUIDs and a client may check the shape.
SANDBOX_TOKEN: Final = "5a4db0c5-5a4d-4b0c-8000-000000000001"
SANDBOX_USER: Final = "sandbox"


def app_env(prefix: str, app_id: str, secret: str, *, api_key: bool = False) -> dict[str, str]:
    """The settings naming a tracker's app: ``<PREFIX>_CLIENT_ID`` and
    ``<PREFIX>_CLIENT_SECRET``, or ``<PREFIX>_API_KEY`` and ``<PREFIX>_API_SECRET`` for the
    Last.fm protocol's trackers."""
    names = ("API_KEY", "API_SECRET") if api_key else ("CLIENT_ID", "CLIENT_SECRET")
    return {f"{prefix}_{names[0]}": app_id, f"{prefix}_{names[1]}": secret}
