"""Simkl's limits: 1 POST/s per token *and* per client id (EXTERNAL_APIS). The app-wide
key caps the whole installation at one Simkl write a second, whatever the number of users
or replicas; its slots are handed out in fair turns per user (``PaceFor.share``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Final

from scrobble_shared.trackers.pace import PaceFor, PaceKey, account_or_token, app_pacing_key, paced

SIMKL_USER_INTERVAL: Final = timedelta(seconds=1)
SIMKL_APP_INTERVAL: Final = timedelta(seconds=1)


def limited_account(token: str | None, account_name: str | None) -> str | None:
    return account_or_token("simkl", token, account_name, by_name=True)


def write_keys(who: PaceFor) -> list[PaceKey]:
    app = paced(app_pacing_key("simkl", who.app_key), who.app_interval or SIMKL_APP_INTERVAL)
    return [paced(who.user_key("simkl"), SIMKL_USER_INTERVAL), replace(app, share=who.share)]
