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
from scrobble_shared.trackers.tracker import Tracker, TrackerSettings, with_app
from scrobble_shared.work import PlayRules, PlayStyle

TAKES: Final = frozenset({ContentType.MOVIE, ContentType.EPISODE, ContentType.ANIME_EPISODE})

TRACKER: Final = Tracker(
    name="simkl",
    title="Simkl",
    keeps="films, TV and anime",
    play=PlayRules(TAKES, PlayStyle.LIVE),
    settings=TrackerSettings.with_app("SIMKL", "https://api.simkl.com", "https://simkl.com"),
    connect=connect.FLOW,
    limits=limits,
    client=with_app(SimklClient),
    reader=with_app(SimklReader),
    resolver=with_app(SimklResolver),
    recheck=with_app(SimklRecheck),
)
