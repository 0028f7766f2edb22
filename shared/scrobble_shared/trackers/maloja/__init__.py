"""Maloja (self-hosted): tracks, one listen per counted play through the ListenBrainz-
compatible API of the user's own server (the ListenBrainz protocol's client, reused), no
now playing and no ratings (Maloja keeps neither), history from its native API; the user
gives their server's address and one of its API keys."""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.maloja import connect, limits
from scrobble_shared.trackers.maloja.client import maloja_client
from scrobble_shared.trackers.maloja.history import MalojaReader
from scrobble_shared.trackers.tracker import Tracker, TrackerSettings, with_api_url
from scrobble_shared.work import PlayRules, PlayStyle

TRACKER: Final = Tracker(
    name="maloja",
    title="Maloja",
    keeps="music",
    play=PlayRules(
        frozenset({ContentType.TRACK}), PlayStyle.LISTEN, now_playing=False, ratings=False
    ),
    settings=TrackerSettings(
        prefix="MALOJA",
        # The server of a connection that names none of its own (each user's connection
        # normally does): Maloja's own default address.
        api_url="http://localhost:42010",
    ),
    connect=connect.FLOW,
    limits=limits,
    client=with_api_url(maloja_client),
    reader=with_api_url(MalojaReader),
)
