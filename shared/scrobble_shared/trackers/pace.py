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
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final

TRAKT_USER_INTERVAL: Final = timedelta(seconds=1)
SIMKL_USER_INTERVAL: Final = timedelta(seconds=1)
SIMKL_APP_INTERVAL: Final = timedelta(seconds=1)
LISTENBRAINZ_USER_INTERVAL: Final = timedelta(0)
ANILIST_USER_INTERVAL: Final = timedelta(seconds=2)


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


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def limited_account(service: str, token: str | None, account_name: str | None) -> str | None:
    """What ``service``'s per-user limit counts for a connection with this access token
    and account name (module docstring), as a digest for its pacing key; None when the
    service limits no user by it (Last.fm: per API key; AniList: by connection, above)."""
    name = (account_name or "").strip().casefold()
    if service in ("trakt", "simkl") and name:
        return f"account-{_digest(service, 'account', name)}"
    if service in ("trakt", "simkl", "listenbrainz") and token:
        return f"token-{_digest(service, 'token', token)}"
    return None


# Slots are handed out by the database clock, but a call reaches the service a little after
# its slot, and the next one may go out right on time: spacing calls by the bare published
# interval lets two land closer than it (seen: Trakt's fake answering 429 at 975 ms).
SEND_MARGIN: Final = timedelta(milliseconds=100)


def _paced(key: str, published: timedelta) -> PaceKey:
    """One call per ``published`` interval, plus the margin, spaced from the answer."""
    if not published:
        return PaceKey(key, published)
    return PaceKey(key, published + SEND_MARGIN, after_answer=True)


# Last.fm's "5 per second" is counted over a window: 5 lanes of one call a second, each
# spaced from its previous call's answer.
LASTFM_CALLS_PER_WINDOW: Final = 5
LASTFM_WINDOW: Final = timedelta(seconds=1)


def pacing_keys(
    service: str,
    connection_id: uuid.UUID,
    app_key: str,
    *,
    simkl_app_interval: timedelta = SIMKL_APP_INTERVAL,
    share: str | None = None,
    account: str | None = None,
) -> list[PaceKey]:
    """The keys a write to ``service`` for this connection counts against (module docstring
    says why each one). ``app_key`` is the app's API key / client id at that service;
    ``share`` the user the write is for, whose fair turns the app's key keeps (None: first
    come, first served); ``account`` what the service's per-user limit counts
    (:func:`limited_account`; None: the connection)."""
    user = f"{service}:user:{account or connection_id}"
    if service == "trakt":
        return [_paced(user, TRAKT_USER_INTERVAL)]
    if service == "simkl":
        app = replace(_paced(app_pacing_key("simkl", app_key), simkl_app_interval), share=share)
        return [_paced(user, SIMKL_USER_INTERVAL), app]
    if service == "lastfm":
        key = app_pacing_key("lastfm", app_key)
        lanes = LASTFM_CALLS_PER_WINDOW
        return [PaceKey(key, LASTFM_WINDOW, after_answer=True, lanes=lanes, share=share)]
    if service == "listenbrainz":
        return [_paced(user, LISTENBRAINZ_USER_INTERVAL)]
    if service == "anilist":
        return [_paced(user, ANILIST_USER_INTERVAL)]
    raise ValueError(f"no pacing rules for service {service!r}")
