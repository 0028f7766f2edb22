"""Maloja's limits: none (each user's own server). The key exists, interval 0, so that a
Retry-After (from a proxy in front of the server) holds every replica."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from scrobble_shared.trackers.pace import PaceFor, PaceKey, paced

MALOJA_USER_INTERVAL: Final = timedelta(0)


def limited_account(token: str | None, account_name: str | None) -> str | None:
    return None  # by connection: each runs against the user's own server


def write_keys(who: PaceFor) -> list[PaceKey]:
    return [paced(who.user_key("maloja"), MALOJA_USER_INTERVAL)]
