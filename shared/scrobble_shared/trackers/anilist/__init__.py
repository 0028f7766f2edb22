"""AniList: anime episodes, as list progress once watched (never lowered) and scores;
OAuth without PKCE; items named by their AniList or MyAnimeList id, or found by title."""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.anilist import connect, limits
from scrobble_shared.trackers.anilist.client import AniListClient
from scrobble_shared.trackers.anilist.history import AniListReader
from scrobble_shared.trackers.anilist.ids import AniListResolver
from scrobble_shared.trackers.tracker import Tracker, TrackerSettings
from scrobble_shared.work import PlayRules, PlayStyle

TRACKER: Final = Tracker(
    name="anilist",
    title="AniList",
    keeps="anime episodes",
    play=PlayRules(frozenset({ContentType.ANIME_EPISODE}), PlayStyle.WATCHED),
    settings=TrackerSettings(
        prefix="ANILIST",
        api_url="https://graphql.anilist.co",
        auth_url="https://anilist.co/api/v2/oauth",
        app=("ANILIST_CLIENT_ID", "ANILIST_CLIENT_SECRET"),
        required=("ANILIST_CLIENT_ID", "ANILIST_CLIENT_SECRET"),
    ),
    connect=connect.FLOW,
    client=lambda config: AniListClient(config.api_url),
    reader=lambda config: AniListReader(config.api_url),
    resolver=lambda config: AniListResolver(config.api_url),
    write_keys=limits.write_keys,
    limited_account=limits.limited_account,
)
