"""ListenBrainz's limits: no fixed figure, per token (its X-RateLimit headers). The key
exists, interval 0, so that X-RateLimit-Remaining 0 / Reset-In holds every replica."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from scrobble_shared.trackers.pace import PaceFor, PaceKey, account_or_token, paced

LISTENBRAINZ_USER_INTERVAL: Final = timedelta(0)


def limited_account(token: str | None, account_name: str | None) -> str | None:
    return account_or_token("listenbrainz", token, account_name, by_name=False)


def write_keys(who: PaceFor) -> list[PaceKey]:
    return [paced(who.user_key("listenbrainz"), LISTENBRAINZ_USER_INTERVAL)]
