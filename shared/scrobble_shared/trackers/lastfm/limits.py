"""Last.fm's limits: under 5 calls/s per API key across all processes (EXTERNAL_APIS),
counted over a window: 5 lanes of one call a second, each spaced from its previous call's
answer; the key is shared by every user, in fair turns. No per-user limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from scrobble_shared.trackers.pace import PaceFor, PaceKey, app_pacing_key

LASTFM_CALLS_PER_WINDOW: Final = 5
LASTFM_WINDOW: Final = timedelta(seconds=1)


def limited_account(token: str | None, account_name: str | None) -> str | None:
    return None  # per API key only


def app_window_keys(service: str, who: PaceFor) -> list[PaceKey]:
    """The app's key at ``service``, 5 calls in any second, in fair turns per user: the
    limit of the Last.fm protocol's API keys (Libre.fm's too)."""
    key = app_pacing_key(service, who.app_key)
    lanes = LASTFM_CALLS_PER_WINDOW
    return [PaceKey(key, LASTFM_WINDOW, after_answer=True, lanes=lanes, share=who.share)]


def write_keys(who: PaceFor) -> list[PaceKey]:
    return app_window_keys("lastfm", who)
