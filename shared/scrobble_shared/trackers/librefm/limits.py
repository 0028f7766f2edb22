"""Libre.fm's limits: it publishes none and its code counts no calls (GNU FM), but it is one
volunteer-run server: calls keep to the protocol's pace, 5 a second per API key across all
processes, in fair turns per user (the Last.fm folder's window, under Libre.fm's own key).
No per-user limit."""

from __future__ import annotations

from scrobble_shared.trackers.lastfm.limits import app_window_keys
from scrobble_shared.trackers.lastfm.limits import limited_account as limited_account
from scrobble_shared.trackers.pace import PaceFor, PaceKey


def write_keys(who: PaceFor) -> list[PaceKey]:
    return app_window_keys("librefm", who)
