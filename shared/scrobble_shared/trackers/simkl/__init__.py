"""Simkl: movies, episodes and anime, scrobbled as they play, with watched history and
ratings; OAuth with PKCE in place of the secret; an app-wide write limit shared in turns."""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.simkl import connect, limits
from scrobble_shared.trackers.simkl.client import SimklClient
from scrobble_shared.trackers.simkl.history import SimklReader
from scrobble_shared.trackers.simkl.ids import SimklResolver
from scrobble_shared.trackers.simkl.recheck import SimklRecheck
from scrobble_shared.trackers.tracker import Tracker, TrackerSettings
from scrobble_shared.work import PlayRules, PlayStyle

TAKES: Final = frozenset({ContentType.MOVIE, ContentType.EPISODE, ContentType.ANIME_EPISODE})

TRACKER: Final = Tracker(
    name="simkl",
    title="Simkl",
    keeps="films, TV and anime",
    play=PlayRules(TAKES, PlayStyle.LIVE),
    settings=TrackerSettings(
        prefix="SIMKL",
        api_url="https://api.simkl.com",
        auth_url="https://simkl.com",
        app=("SIMKL_CLIENT_ID", "SIMKL_CLIENT_SECRET"),
        required=("SIMKL_CLIENT_ID", "SIMKL_CLIENT_SECRET"),
    ),
    connect=connect.FLOW,
    client=lambda config: SimklClient(config.api_url, config.app),
    reader=lambda config: SimklReader(config.api_url, config.app),
    resolver=lambda config: SimklResolver(config.api_url, config.app),
    recheck=lambda config: SimklRecheck(config.api_url, config.app),
    write_keys=limits.write_keys,
    limited_account=limits.limited_account,
)
