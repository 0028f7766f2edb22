"""A tracker that speaks the Last.fm 2.0 protocol (Last.fm, Libre.fm) as one value: the
protocol's client, history reader and web auth, told the tracker's name, settings and
limits and where its answers differ from Last.fm's. Each such tracker's folder calls
:func:`protocol_tracker` with its own."""

from __future__ import annotations

from collections.abc import Callable

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.lastfm import connect
from scrobble_shared.trackers.lastfm.client import (
    LASTFM_IGNORED,
    MAX_BATCH,
    IgnoredCodes,
    LastfmClient,
)
from scrobble_shared.trackers.lastfm.history import LastfmReader
from scrobble_shared.trackers.recheck import Recheck
from scrobble_shared.trackers.tracker import Tracker, TrackerConfig, TrackerLimits, TrackerSettings
from scrobble_shared.work import PlayRules, PlayStyle


def protocol_tracker(
    name: str,
    title: str,
    settings: TrackerSettings,
    limits: TrackerLimits,
    *,
    ignored: IgnoredCodes = LASTFM_IGNORED,
    strict_range: bool = False,
    no_scrobbles_error: int | None = None,
    recheck: Callable[[TrackerConfig], Recheck] | None = None,
) -> Tracker:
    """Tracks, as now playing and one signed scrobble per counted listen (a backlog in
    batches of 50), loves for high ratings, connected by web auth. ``ignored``: what its
    ``ignoredMessage`` codes mean; ``strict_range`` and ``no_scrobbles_error``: how its
    history reads a range (``history.py``)."""

    def client(config: TrackerConfig) -> LastfmClient:
        return LastfmClient(config.api_url, config.app, service=name, label=title, ignored=ignored)

    def reader(config: TrackerConfig) -> LastfmReader:
        return LastfmReader(
            config.api_url,
            config.app,
            service=name,
            label=title,
            write_keys=limits.write_keys,
            strict_range=strict_range,
            no_scrobbles_error=no_scrobbles_error,
        )

    return Tracker(
        name=name,
        title=title,
        keeps="music",
        play=PlayRules(frozenset({ContentType.TRACK}), PlayStyle.LISTEN),
        settings=settings,
        connect=connect.FLOW,
        limits=limits,
        client=client,
        reader=reader,
        recheck=recheck,
        batch_size=MAX_BATCH,
    )
