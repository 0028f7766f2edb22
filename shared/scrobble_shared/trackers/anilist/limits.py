"""AniList's limits: 30 requests a minute per token in practice (EXTERNAL_APIS), one
key per connection for its writes, lookups and imports alike (they share the limit)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from scrobble_shared.trackers.pace import PaceFor, PaceKey, paced

ANILIST_USER_INTERVAL: Final = timedelta(seconds=2)


def limited_account(token: str | None, account_name: str | None) -> str | None:
    return None  # by connection: writes, lookups and imports share one key


def write_keys(who: PaceFor) -> list[PaceKey]:
    return [paced(who.user_key("anilist"), ANILIST_USER_INTERVAL)]
