"""Last.fm: tracks, as now playing and one signed scrobble per counted listen (a backlog in
batches of 50), loves for high ratings; web auth; one rate limit per API key for everyone.
The protocol's code (``protocol.py``) serves Libre.fm as well."""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.lastfm import limits
from scrobble_shared.trackers.lastfm.protocol import protocol_tracker
from scrobble_shared.trackers.lastfm.recheck import LastfmRecheck
from scrobble_shared.trackers.tracker import TrackerSettings, with_app

TRACKER: Final = protocol_tracker(
    "lastfm",
    "Last.fm",
    TrackerSettings.with_app(
        "LASTFM",
        "https://ws.audioscrobbler.com/2.0/",
        "https://www.last.fm/api/auth/",
        app=("API_KEY", "API_SECRET"),
    ),
    limits,
    recheck=with_app(LastfmRecheck),
)
