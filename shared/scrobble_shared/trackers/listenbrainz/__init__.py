"""ListenBrainz: tracks, as playing-now and one listen per counted play (a backlog as
imports of 100), feedback for high ratings with a recording MBID; the user's own token."""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.listenbrainz import connect, limits
from scrobble_shared.trackers.listenbrainz.client import IMPORT_BATCH, ListenBrainzClient
from scrobble_shared.trackers.listenbrainz.history import ListenBrainzReader
from scrobble_shared.trackers.tracker import Tracker, TrackerSettings, with_api_url
from scrobble_shared.work import PlayRules, PlayStyle

TRACKER: Final = Tracker(
    name="listenbrainz",
    title="ListenBrainz",
    keeps="music",
    play=PlayRules(
        frozenset({ContentType.TRACK}), PlayStyle.LISTEN, rating_needs_recording_mbid=True
    ),
    settings=TrackerSettings(
        prefix="LISTENBRAINZ",
        api_url="https://api.listenbrainz.org/1",
        api_path="/1",
        secret_extra=("LISTENBRAINZ_TOKEN",),
    ),
    connect=connect.FLOW,
    limits=limits,
    client=with_api_url(ListenBrainzClient),
    reader=with_api_url(ListenBrainzReader),
    batch_size=IMPORT_BATCH,
)
