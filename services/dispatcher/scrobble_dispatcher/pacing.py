"""Pacing shared by every dispatcher replica: which rate limits a call falls under, and the
Postgres slots (table ``pacing_slots``) that space calls out across all processes.

Rules (pure): :func:`pacing_keys` names the keys a *write* to a service counts against and
the least interval between two calls on each key, after EXTERNAL_APIS.md:

- Trakt: writes 1/s per user -> ``trakt:user:<connection>`` 1 s.
- Simkl: 1 POST/s per token *and* per client id -> ``simkl:user:<connection>`` 1 s and
  ``simkl:app[:<app>]`` (1 s by default, ``simkl_app_interval``). Consequence: the per-client-id
  limit caps the whole installation at one Simkl write a second (3,600 an hour) whatever the
  number of users or replicas; a backlog then drains at that pace, later work is rescheduled.
- Last.fm: under 5 calls/s per API key across all processes -> ``lastfm:app[:<app>]`` 0.2 s.
- ListenBrainz: no fixed figure; ``listenbrainz:user:<connection>`` with interval 0 exists so
  that X-RateLimit-Remaining 0 / Reset-In can be honoured by every replica through :func:`hold`.
- AniList: 30/min per token in practice -> ``anilist:user:<connection>`` 2 s.

App keys carry a digest of the app's key (API key, client id), never the key itself; with no
app key given they are plain ``simkl:app`` / ``lastfm:app``.

Slots (I/O): :func:`reserve` hands out the moment the caller may send, one statement, atomic
across replicas: the row's ``next_at`` moves to ``max(next_at, now, not_before) + interval``
and the caller gets the moment before that step. Consecutive slots on a key are therefore at
least ``interval`` apart, and a ``next_at`` left in the past (an idle key) does not let
callers burst: the first gets "now", the next "now + interval". The caller sleeps until its
slot; :func:`reserve_within` takes it only when it is within the wait the caller accepts,
and otherwise moves nothing and says when to come back (the work is rescheduled for then),
so work put back never pushes later callers further out. :func:`hold` pushes a key's
``next_at`` to at least a given moment (Retry-After, X-RateLimit-Reset-In, Trakt's
``until``), so every replica waits; slots handed out before the hold are not recalled.

:func:`reserve_all` takes one common slot for several keys (Simkl's user and app). Reserving
them one after another would be wrong, not just wasteful: if the second key's slot is later,
the caller sends then, while the first key has already been told its next call may go one
interval after the *earlier* slot, so two calls on the first key could come closer than its
interval. So the keys are locked together (in key order, so concurrent callers cannot
deadlock) and each is moved to ``common slot + its own interval``. A key that was free
earlier than the common slot leaves that gap unused (no backfilling): throughput, not safety.

Clocks: slots come from the database clock, ``clock_timestamp()`` rather than ``now()``:
``now()`` is the start of the transaction, so a reservation made inside a longer
transaction would get slots in the past and let callers burst. Callers compare slots with
their own clock, so the hosts' clocks must agree (NTP); a host running ahead sends early by
its skew. Reserve in autocommit (or a short transaction): the key's row stays locked until
the transaction ends, and other replicas wait on it.

Failure policy: nothing here catches database errors. If Postgres is down or the statement
fails, the asyncpg error is raised to the caller, which treats it as transient (nothing was
sent; retry the work later, don't commit the message). Bad arguments (a negative interval, a
naive datetime, an unknown service) raise ValueError: a programming error.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from scrobble_shared.db import Conn

TRAKT_USER_INTERVAL: Final = timedelta(seconds=1)
SIMKL_USER_INTERVAL: Final = timedelta(seconds=1)
SIMKL_APP_INTERVAL: Final = timedelta(seconds=1)
LASTFM_APP_INTERVAL: Final = timedelta(milliseconds=200)
LISTENBRAINZ_USER_INTERVAL: Final = timedelta(0)
ANILIST_USER_INTERVAL: Final = timedelta(seconds=2)


@dataclass(frozen=True)
class PaceKey:
    """One rate limit a call counts against: its row in ``pacing_slots`` and the least time
    between two calls on it."""

    key: str
    interval: timedelta
    # Spaced from when the previous call was *answered*, not sent: it reached the service
    # somewhere in between, so only the answer bounds its arrival. Right for limits of one
    # call per interval (per user), where calls go one after another anyway; not for a
    # shared key of several calls per window (Last.fm), where it would serialise everyone.
    after_answer: bool = False

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a pacing key needs a name")
        if self.interval < timedelta(0):
            raise ValueError(f"negative pacing interval for {self.key}: {self.interval}")


def app_pacing_key(service: str, app_key: str) -> str:
    """The app-wide key: ``<service>:app:<digest of the app's key>``, so the table never
    holds the key itself; plain ``<service>:app`` when no app key is given (one app per
    installation; every replica must then leave it out alike)."""
    if not app_key:
        return f"{service}:app"
    return f"{service}:app:{hashlib.sha256(app_key.encode()).hexdigest()[:16]}"


# Slots are handed out by the database clock, but a call reaches the service a little after
# its slot, and the next one may go out right on time: spacing calls by the bare published
# interval lets two land closer than it (seen: Trakt's fake answering 429 at 975 ms).
SEND_MARGIN: Final = timedelta(milliseconds=100)


def _paced(
    key: str, published: timedelta, calls_per_window: int = 1, margin: timedelta = SEND_MARGIN
) -> PaceKey:
    """``published`` spacing plus a margin spread over the calls a limit's window holds."""
    if not published:
        return PaceKey(key, published)
    return PaceKey(key, published + margin / calls_per_window, after_answer=calls_per_window == 1)


# Last.fm's "5 per second" is counted over a window: 5 evenly spaced calls need the margin
# once per window, not once per call (0.3 s each lost 40% of the rate). 250 ms per window
# (0.25 s a call) keeps the sixth call a quarter second clear of the first's window: with
# 100 ms (0.22 s a call) two loaded replicas drew a 429 from the fake in the replica test.
LASTFM_CALLS_PER_WINDOW: Final = 5
LASTFM_WINDOW_MARGIN: Final = timedelta(milliseconds=250)


def pacing_keys(
    service: str,
    connection_id: uuid.UUID,
    app_key: str,
    *,
    simkl_app_interval: timedelta = SIMKL_APP_INTERVAL,
) -> list[PaceKey]:
    """The keys a write to ``service`` for this connection counts against (module docstring
    says why each one). ``app_key`` is the app's API key / client id at that service."""
    user = f"{service}:user:{connection_id}"
    if service == "trakt":
        return [_paced(user, TRAKT_USER_INTERVAL)]
    if service == "simkl":
        app = app_pacing_key("simkl", app_key)
        return [_paced(user, SIMKL_USER_INTERVAL), _paced(app, simkl_app_interval)]
    if service == "lastfm":
        key = app_pacing_key("lastfm", app_key)
        return [_paced(key, LASTFM_APP_INTERVAL, LASTFM_CALLS_PER_WINDOW, LASTFM_WINDOW_MARGIN)]
    if service == "listenbrainz":
        return [_paced(user, LISTENBRAINZ_USER_INTERVAL)]
    if service == "anilist":
        return [_paced(user, ANILIST_USER_INTERVAL)]
    raise ValueError(f"no pacing rules for service {service!r}")


def _check_aware(moment: datetime | None, name: str) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


_RESERVE: Final = """
INSERT INTO pacing_slots AS p (key, next_at)
VALUES ($1, greatest(clock_timestamp(), $3::timestamptz) + $2::interval)
ON CONFLICT (key) DO UPDATE
    SET next_at = greatest(p.next_at, clock_timestamp(), $3::timestamptz) + $2::interval
RETURNING p.next_at - $2::interval
"""


async def reserve(
    conn: Conn, key: str, interval: timedelta, not_before: datetime | None = None
) -> datetime:
    """Take the next slot on ``key``: the moment (now or later) this caller may send."""
    PaceKey(key, interval)  # validates
    _check_aware(not_before, "not_before")
    slot: datetime = await conn.fetchval(_RESERVE, key, interval, not_before)
    return slot


_HOLD: Final = """
INSERT INTO pacing_slots AS p (key, next_at) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET next_at = greatest(p.next_at, EXCLUDED.next_at)
"""


async def hold(conn: Conn, key: str, until: datetime) -> None:
    """Let no replica send on ``key`` before ``until`` (never brings a slot forward)."""
    if not key:
        raise ValueError("a pacing key needs a name")
    _check_aware(until, "until")
    await conn.execute(_HOLD, key, until)


_NOW: Final = "SELECT greatest(clock_timestamp(), $1::timestamptz)"
# Rows must exist before they can be locked; inserted in key order, like the locks below.
_ENSURE_ROWS: Final = """
INSERT INTO pacing_slots (key, next_at)
SELECT key, '-infinity' FROM unnest($1::text[]) AS key ORDER BY key
ON CONFLICT (key) DO NOTHING
"""
_LOCK_AND_SLOT: Final = """
SELECT greatest(max(next_at), clock_timestamp(), $2::timestamptz), clock_timestamp()
FROM (SELECT next_at FROM pacing_slots WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE) AS k
"""
_MOVE_ALL: Final = """
UPDATE pacing_slots AS p SET next_at = $3::timestamptz + w.step
FROM unnest($1::text[], $2::interval[]) AS w(key, step)
WHERE p.key = w.key
"""


def _steps(keys: Iterable[PaceKey]) -> dict[str, timedelta]:
    """Interval per key name; the same key twice counts once, with the longer interval."""
    steps: dict[str, timedelta] = {}
    for pace in keys:
        steps[pace.key] = max(pace.interval, steps.get(pace.key, pace.interval))
    return steps


async def _reserve_locked(
    conn: Conn,
    steps: dict[str, timedelta],
    not_before: datetime | None,
    within: timedelta | None,
) -> tuple[datetime, bool]:
    """The common slot of ``steps``' keys, locked together in key order; each key moves to
    slot + its interval unless the slot is more than ``within`` away (then nothing moves)."""
    names = sorted(steps)
    async with conn.transaction():
        await conn.execute(_ENSURE_ROWS, names)
        row = await conn.fetchrow(_LOCK_AND_SLOT, names, not_before)
        assert row is not None
        slot, now = row[0], row[1]
        if within is not None and slot - now > within:
            return slot, False
        await conn.execute(_MOVE_ALL, names, [steps[name] for name in names], slot)
    return slot, True


async def reserve_all(
    conn: Conn, keys: Iterable[PaceKey], not_before: datetime | None = None
) -> datetime:
    """One slot valid on every key: the latest of their next slots; each key then moves to
    that slot plus its own interval (atomically; see the module docstring)."""
    _check_aware(not_before, "not_before")
    steps = _steps(keys)
    if not steps:
        nothing_to_pace: datetime = await conn.fetchval(_NOW, not_before)
        return nothing_to_pace
    if len(steps) == 1:
        [(key, interval)] = steps.items()
        return await reserve(conn, key, interval, not_before)
    slot, _ = await _reserve_locked(conn, steps, not_before, within=None)
    return slot


async def reserve_within(
    conn: Conn, keys: Iterable[PaceKey], within: timedelta, not_before: datetime | None = None
) -> tuple[datetime, bool]:
    """Like :func:`reserve_all`, but only when the common slot is at most ``within`` away:
    returns ``(slot, True)`` with the slot spent, or ``(slot, False)`` with nothing moved,
    ``slot`` then being when to come back. A caller that would not wait that long spends
    no slot, so work put back never pushes later callers further out."""
    _check_aware(not_before, "not_before")
    steps = _steps(keys)
    if not steps:
        now: datetime = await conn.fetchval(_NOW, not_before)
        return now, True
    if len(steps) == 1 and not any(steps.values()):
        # A key with no spacing (ListenBrainz) only carries holds: taking its slot moves
        # nothing that matters, so one statement does, instead of a locking transaction.
        [key] = steps
        slot = await reserve(conn, key, timedelta(0), not_before)
        return slot, slot - datetime.now(slot.tzinfo) <= within
    return await _reserve_locked(conn, steps, not_before, within)
