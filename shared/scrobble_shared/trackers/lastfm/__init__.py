"""Last.fm: tracks, as now playing and one signed scrobble per counted listen (a backlog in
batches of 50), loves for high ratings; web auth; one rate limit per API key for everyone."""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.lastfm import connect, limits
from scrobble_shared.trackers.lastfm.client import MAX_BATCH, LastfmClient
from scrobble_shared.trackers.lastfm.history import LastfmReader
from scrobble_shared.trackers.lastfm.recheck import LastfmRecheck
from scrobble_shared.trackers.tracker import Tracker, TrackerSettings
from scrobble_shared.work import PlayRules, PlayStyle

TRACKER: Final = Tracker(
    name="lastfm",
    title="Last.fm",
    keeps="music",
    play=PlayRules(frozenset({ContentType.TRACK}), PlayStyle.LISTEN),
    settings=TrackerSettings(
        prefix="LASTFM",
        api_url="https://ws.audioscrobbler.com/2.0/",
        auth_url="https://www.last.fm/api/auth/",
        app=("LASTFM_API_KEY", "LASTFM_API_SECRET"),
        required=("LASTFM_API_KEY", "LASTFM_API_SECRET"),
    ),
    connect=connect.FLOW,
    client=lambda config: LastfmClient(config.api_url, config.app),
    reader=lambda config: LastfmReader(config.api_url, config.app),
    recheck=lambda config: LastfmRecheck(config.api_url, config.app),
    write_keys=limits.write_keys,
    limited_account=limits.limited_account,
    batch_size=MAX_BATCH,
)
