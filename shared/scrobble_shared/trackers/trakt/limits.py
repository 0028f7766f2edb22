"""Trakt's limits: writes 1/s per user account (EXTERNAL_APIS), counted by the account's
name when known (one account connected twice is one limit), else by its token."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from scrobble_shared.trackers.pace import PaceFor, PaceKey, account_or_token, paced

TRAKT_USER_INTERVAL: Final = timedelta(seconds=1)


def limited_account(token: str | None, account_name: str | None) -> str | None:
    return account_or_token("trakt", token, account_name, by_name=True)


def write_keys(who: PaceFor) -> list[PaceKey]:
    return [paced(who.user_key("trakt"), TRAKT_USER_INTERVAL)]
