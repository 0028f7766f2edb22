"""Libre.fm: the Last.fm 2.0 protocol at libre.fm (GNU FM), spoken by the Last.fm folder's
client, reader, error table and web auth under Libre.fm's name; what Libre.fm answers
otherwise is in ``answers.py``, its limit in ``limits.py``. Tracks, as now playing and one
signed scrobble per counted listen (a backlog in batches of 50), loves for high ratings.

Libre.fm registers no apps: any API key and secret are taken (GNU FM checks neither; its
README asks for 32 characters), so ``LIBREFM_API_KEY`` and ``LIBREFM_API_SECRET`` are
whatever the operator picks, and the calls are signed all the same.
"""

from __future__ import annotations

from typing import Final

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.lastfm import connect as lastfm_connect
from scrobble_shared.trackers.lastfm.client import MAX_BATCH, LastfmClient
from scrobble_shared.trackers.lastfm.history import LastfmReader
from scrobble_shared.trackers.librefm import answers, limits
from scrobble_shared.trackers.tracker import Tracker, TrackerConfig, TrackerSettings
from scrobble_shared.work import PlayRules, PlayStyle

NAME: Final = "librefm"
TITLE: Final = "Libre.fm"


def _client(config: TrackerConfig) -> LastfmClient:
    return LastfmClient(
        config.api_url, config.app, service=NAME, label=TITLE, ignored=answers.IGNORED
    )


def _reader(config: TrackerConfig) -> LastfmReader:
    return LastfmReader(
        config.api_url,
        config.app,
        service=NAME,
        label=TITLE,
        write_keys=limits.write_keys,
        strict_range=True,
        no_scrobbles_error=answers.NO_SCROBBLES,
    )


TRACKER: Final = Tracker(
    name=NAME,
    title=TITLE,
    keeps="music",
    play=PlayRules(frozenset({ContentType.TRACK}), PlayStyle.LISTEN),
    settings=TrackerSettings(
        prefix="LIBREFM",
        api_url="https://libre.fm/2.0/",
        auth_url="https://libre.fm/api/auth/",
        app=("LIBREFM_API_KEY", "LIBREFM_API_SECRET"),
        required=("LIBREFM_API_KEY", "LIBREFM_API_SECRET"),
    ),
    connect=lastfm_connect.FLOW,
    client=_client,
    reader=_reader,
    write_keys=limits.write_keys,
    limited_account=limits.limited_account,
    batch_size=MAX_BATCH,
)
