"""Trakt: movies and episodes, scrobbled as they play (start, pause, stop) with watched
history and ratings; OAuth with a device code flow; tokens that expire and refresh."""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.refresh import RefreshConfig
from scrobble_shared.trackers.tracker import Tracker, TrackerConfig, TrackerSettings, with_app
from scrobble_shared.trackers.trakt import connect, limits
from scrobble_shared.trackers.trakt.client import TraktClient
from scrobble_shared.trackers.trakt.history import TraktReader
from scrobble_shared.trackers.trakt.ids import TraktResolver
from scrobble_shared.trackers.trakt.recheck import TraktRecheck
from scrobble_shared.work import PlayRules, PlayStyle


def _refresh(config: TrackerConfig) -> RefreshConfig:
    assert config.auth_url is not None
    return RefreshConfig.trakt(
        config.auth_url, config.app, config.extra.get(connect.REDIRECT_SETTING)
    )


TRACKER: Final = Tracker(
    name="trakt",
    title="Trakt",
    keeps="films and TV episodes",
    play=PlayRules(frozenset({ContentType.MOVIE, ContentType.EPISODE}), PlayStyle.LIVE),
    settings=TrackerSettings.with_app(
        "TRAKT",
        "https://api.trakt.tv",
        # EXTERNAL_APIS lists a CONFLICT between api.trakt.tv/oauth and auth.trakt.tv/oauth;
        # the contracts updated in 2026 name auth.trakt.tv, so that is the default.
        "https://auth.trakt.tv",
        extra=(connect.REDIRECT_SETTING,),
    ),
    connect=connect.FLOW,
    limits=limits,
    client=with_app(TraktClient),
    reader=with_app(TraktReader),
    resolver=with_app(TraktResolver),
    refresh=_refresh,
    recheck=lambda config: TraktRecheck(TraktClient(config.api_url, config.app)),
)
