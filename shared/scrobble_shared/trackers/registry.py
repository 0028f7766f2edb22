"""The registry: the one list of the trackers this house delivers to. Everything that
needs to know the trackers reads them here (delivery, imports, resolution, pacing, the
gateway's connect routes, the settings, the CLI and the page) and names none of them.

Adding a tracker is a new folder beside the others, with its ``TRACKER``, and one entry
here.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Final

from scrobble_shared.trackers import anilist, lastfm, librefm, listenbrainz, maloja, simkl, trakt
from scrobble_shared.trackers.pace import PaceFor, PaceKey
from scrobble_shared.trackers.tracker import Tracker

TRACKERS: Final[tuple[Tracker, ...]] = (
    trakt.TRACKER,
    lastfm.TRACKER,
    listenbrainz.TRACKER,
    simkl.TRACKER,
    anilist.TRACKER,
    librefm.TRACKER,
    maloja.TRACKER,
)

SERVICES: Final[tuple[str, ...]] = tuple(t.name for t in TRACKERS)
_BY_NAME: Final[dict[str, Tracker]] = {t.name: t for t in TRACKERS}


class UnknownTracker(ValueError):
    """No tracker has this name."""


def tracker(name: str) -> Tracker:
    """The tracker of this name; :class:`UnknownTracker` when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownTracker(f"no tracker is named {name!r}") from None


def is_tracker(name: object) -> bool:
    return isinstance(name, str) and name in _BY_NAME


def pacing_keys(
    service: str,
    connection_id: uuid.UUID,
    app_key: str,
    *,
    share: str | None = None,
    account: str | None = None,
    app_interval: timedelta | None = None,
) -> list[PaceKey]:
    """The keys a write to ``service`` for this connection counts against (its folder's
    ``limits.py`` says why each one)."""
    who = PaceFor(connection_id, app_key, share, account, app_interval)
    return tracker(service).limits.write_keys(who)


def limited_account(service: str, token: str | None, account_name: str | None) -> str | None:
    """What ``service``'s per-user limit counts for a connection with this token and
    account name, as a digest for its key; None when it limits no user by them."""
    return tracker(service).limits.limited_account(token, account_name)
