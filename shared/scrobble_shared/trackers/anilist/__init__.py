"""AniList: anime episodes, as list progress once watched (never lowered) and scores;
OAuth without PKCE; items named by their AniList or MyAnimeList id, or found by title."""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.anilist import connect, limits
from scrobble_shared.trackers.anilist.client import AniListClient
from scrobble_shared.trackers.anilist.history import AniListReader
from scrobble_shared.trackers.anilist.ids import AniListResolver
from scrobble_shared.trackers.tracker import Tracker, TrackerSettings, with_api_url
from scrobble_shared.work import PlayRules, PlayStyle

TRACKER: Final = Tracker(
    name="anilist",
    title="AniList",
    keeps="anime episodes",
    play=PlayRules(frozenset({ContentType.ANIME_EPISODE}), PlayStyle.WATCHED),
    settings=TrackerSettings.with_app(
        "ANILIST", "https://graphql.anilist.co", "https://anilist.co/api/v2/oauth"
    ),
    connect=connect.FLOW,
    limits=limits,
    client=with_api_url(AniListClient),
    reader=with_api_url(AniListReader),
    resolver=with_api_url(AniListResolver),
)
