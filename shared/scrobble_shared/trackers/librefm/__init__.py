"""Libre.fm: the Last.fm 2.0 protocol at libre.fm (GNU FM), spoken by the Last.fm folder's
client, reader, error table and web auth under Libre.fm's name
(``lastfm/protocol.py``); what Libre.fm answers otherwise is in ``answers.py``, its limit
in ``limits.py``. Tracks, as now playing and one signed scrobble per counted listen (a
backlog in batches of 50), loves for high ratings.

Libre.fm registers no apps: any API key and secret are taken (GNU FM checks neither; its
README asks for 32 characters), so ``LIBREFM_API_KEY`` and ``LIBREFM_API_SECRET`` are
whatever the operator picks, and the calls are signed all the same.
"""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.lastfm.protocol import protocol_tracker
from scrobble_shared.trackers.librefm import answers, limits
from scrobble_shared.trackers.tracker import TrackerSettings

TRACKER: Final = protocol_tracker(
    "librefm",
    "Libre.fm",
    TrackerSettings.with_app(
        "LIBREFM",
        "https://libre.fm/2.0/",
        "https://libre.fm/api/auth/",
        app=("API_KEY", "API_SECRET"),
    ),
    limits,
    ignored=answers.IGNORED,
    strict_range=True,
    no_scrobbles_error=answers.NO_SCROBBLES,
)
