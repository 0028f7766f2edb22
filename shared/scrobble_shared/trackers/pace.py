"""Rate limits as keys (pure): which limits a call counts against and the least time between
two calls on each. The Postgres slots that space calls across replicas are the dispatcher's
(``scrobble_dispatcher.pacing``, whose docstring says how keys, lanes and fair turns work);
this module only names the keys.

- Trakt: writes 1/s per user account -> ``trakt:user:<account>`` 1 s.
- Simkl: 1 POST/s per token *and* per client id -> ``simkl:user:<account>`` 1 s and
  ``simkl:app[:<app>]`` (1 s by default, ``simkl_app_interval``): the per-client-id limit
  caps the whole installation at one Simkl write a second.
- Last.fm: under 5 calls/s per API key across all processes -> ``lastfm:app[:<app>]``, a
  windowed key of 5 lanes, 1 s each.
- ListenBrainz: no fixed figure; ``listenbrainz:user:<token>`` with interval 0 exists so
  that X-RateLimit-Remaining 0 / Reset-In can be honoured by every replica (a hold).
- AniList: 30/min per token in practice -> ``anilist:user:<connection>`` 2 s.

App keys carry a digest of the app's key (API key, client id), never the key itself; with no
app key given they are plain ``simkl:app`` / ``lastfm:app``. Per-user keys carry a digest of
what the service counts (:func:`limited_account`), never the token or name itself.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Final


@dataclass(frozen=True)
class PaceKey:
    """One rate limit a call counts against: its row in ``pacing_slots`` and the least time
    between two calls on it."""

    key: str
    interval: timedelta
    # Spaced from when the previous call was *answered*, not sent: it reached the service
    # somewhere in between, so only the answer bounds its arrival. (Windowed keys are
    # always spaced so, lane by lane.)
    after_answer: bool = False
    # Several calls per window (``interval``): that many lanes, each spaced from its own
    # previous call's answer (module docstring). 1: a plain key.
    lanes: int = 1
    # On a key many users share: the caller's user, whose fair turns it keeps (module
    # docstring). None: a key of one user, handed out first come, first served.
    share: str | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a pacing key needs a name")
        if self.interval < timedelta(0):
            raise ValueError(f"negative pacing interval for {self.key}: {self.interval}")
        if self.lanes < 1:
            raise ValueError(f"a pacing key needs at least one lane: {self.key}")
        if self.share == "":
            raise ValueError(f"a share of a pacing key needs a name: {self.key}")

    def lane_keys(self) -> list[str]:
        """The rows of a windowed key's lanes; none for a plain key."""
        return [f"{self.key}#{n}" for n in range(self.lanes)] if self.lanes > 1 else []

    def fair_step(self, users: int) -> timedelta:
        """How far past a slot the share that took it gets its next turn, with ``users``
        taking turns: the key's rate divided among them."""
        return self.interval / self.lanes * max(users, 1)


def app_pacing_key(service: str, app_key: str) -> str:
    """The app-wide key: ``<service>:app:<digest of the app's key>``, so the table never
    holds the key itself; plain ``<service>:app`` when no app key is given (one app per
    installation; every replica must then leave it out alike)."""
    if not app_key:
        return f"{service}:app"
    return f"{service}:app:{hashlib.sha256(app_key.encode()).hexdigest()[:16]}"


def digest(*parts: str) -> str:
    """A short digest naming a token or an account in a key, never the thing itself."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def account_or_token(
    service: str, token: str | None, account_name: str | None, *, by_name: bool
) -> str | None:
    """What a per-user limit counts as a key part: the account by its name when the service
    counts accounts (``by_name``) and the name is known, else the token; None without
    either. The name in any case and with surrounding space is one account."""
    name = (account_name or "").strip().casefold()
    if by_name and name:
        return f"account-{digest(service, 'account', name)}"
    if token:
        return f"token-{digest(service, 'token', token)}"
    return None


# Slots are handed out by the database clock, but a call reaches the service a little after
# its slot, and the next one may go out right on time: spacing calls by the bare published
# interval lets two land closer than it (seen: Trakt's fake answering 429 at 975 ms).
SEND_MARGIN: Final = timedelta(milliseconds=100)


def paced(key: str, published: timedelta) -> PaceKey:
    """One call per ``published`` interval, plus the margin, spaced from the answer."""
    if not published:
        return PaceKey(key, published)
    return PaceKey(key, published + SEND_MARGIN, after_answer=True)


@dataclass(frozen=True)
class PaceFor:
    """Who a write is for, as a tracker's rules need it to name its keys."""

    connection_id: uuid.UUID
    # The app's API key / client id at the service ("" when none is configured).
    app_key: str = ""
    # The user the write is for, whose fair turns an app-wide key keeps (None: first come,
    # first served).
    share: str | None = None
    # What the service's per-user limit counts (the tracker's ``limited_account``; None:
    # the connection).
    account: str | None = None
    # An app-wide key's interval when it is not the published one (tests, tuning).
    app_interval: timedelta | None = None

    def user_key(self, service: str) -> str:
        return f"{service}:user:{self.account or self.connection_id}"
