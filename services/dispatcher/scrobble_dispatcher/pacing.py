"""Pacing shared by every dispatcher replica: which rate limits a call falls under, and the
Postgres slots (table ``pacing_slots``) that space calls out across all processes.

Rules (pure) are each tracker's own: its folder's ``limits.py`` names the keys a *write*
counts against and the least interval between two calls on each, after EXTERNAL_APIS.md
(``scrobble_shared.trackers.registry.pacing_keys`` asks the right tracker). A key is a
tracker's per-user limit (``<tracker>:user:<account>``, where ``<account>`` is a digest of
what the tracker counts: a token, an account's name, or the connection) or its app-wide
limit (``<tracker>:app[:<digest of the app's key>]``), shared by every user in fair turns.

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

:func:`reserve_within` takes one common slot for several keys (Simkl's user and app). Reserving
them one after another would be wrong, not just wasteful: if the second key's slot is later,
the caller sends then, while the first key has already been told its next call may go one
interval after the *earlier* slot, so two calls on the first key could come closer than its
interval. So the keys are locked together (in key order, so concurrent callers cannot
deadlock) and each is moved to ``common slot + its own interval``. A key that was free
earlier than the common slot leaves that gap unused (no backfilling): throughput, not safety.

Windowed keys (``PaceKey.lanes`` > 1; Last.fm's "5 calls in any second"): the key has that
many lanes, rows ``<key>#<n>``, and each call takes the lane free soonest. A lane carries
one call at a time: while the call is out its ``next_at`` is parked far ahead
(``IN_FLIGHT``), and once it is answered :func:`after_call` sets it to the answer plus the
window. Any ``lanes + 1`` calls include two on one lane, the later sent after the earlier
was answered plus a window, so it *arrived* more than a window after the earlier arrived:
no window ever holds more than ``lanes`` calls, however long the network took, with no
margin to guess. (A call given up on, timed out or reset, counts as answered when given
up: by then the request has reached the service or never will.) Lanes are given back on
the database clock, as slots are handed out on it. The rate given up is the round trip
per lane per window (a few percent against a nearby service), where spacing single calls
needed a margin per window (20%). The key's own row then only carries holds
(Retry-After), which every lane honours.

Fair turns (issue 15): a key many users share (the app's key at Last.fm, its client id at
Simkl) is handed out in turns, so one user's backlog cannot hold back another user's play
by more than a few slots. A caller of such a key names its user (``PaceKey.share``); table
``pacing_turns`` keeps, per key and user, the user's *turn*: the earliest moment it may
take the key's next slot. Each slot a user takes moves its turn one fair step past the
slot: the key's interval per lane (1.1 s at Simkl, 0.2 s at Last.fm) times the users
taking turns (those whose turn lies ahead, itself included). A user alone gets every slot;
two users with backlogs get every other slot; n users one in n: round-robin across every
replica, kept in Postgres under the key's own row lock. A caller whose turn has not come
takes nothing: the slot is left for whoever's turn it is, and it is told to come back at
its turn (``Slot.turn``); :class:`Pacer` waits for it when it is within reach, else the
work is put back until then. A user that stops asking drops out of the count once its
turn has passed, so the others' steps shrink back within a round. What it bounds: a user
holds at most one slot ahead of the clock, however many of its calls ask at once (the
consumer's, the poller's, other replicas'), so a new user's first call waits behind at
most one slot per other user. What it costs: after a user's last call the others' steps
stay one user wider until its turn has passed (a slot or so per departing user).

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

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from scrobble_shared.trackers.pace import PaceKey

if TYPE_CHECKING:
    from asyncpg import Pool

    from scrobble_shared.db import Conn

# How long a lane stays taken by a call not yet answered: well past the longest a call may
# take (CALL_DEADLINE, which its callers enforce), so it is only reached when the caller
# died mid-call; the lane is then lost for that long, the other lanes go on.
IN_FLIGHT: Final = timedelta(seconds=60)
CALL_DEADLINE: Final = timedelta(seconds=30)


@dataclass(frozen=True)
class Slot:
    """A reservation: when the caller may send (``at``), whether the slot was taken (False:
    nothing moved, come back at ``at``), and the lanes it holds until :func:`after_call`
    (each a lane row with the in-flight moment it was parked at)."""

    at: datetime
    taken: bool = True
    lanes: tuple[tuple[str, datetime], ...] = ()
    # Not taken because every lane of a windowed key has a call out: ``at`` is then only
    # the earliest a lane can be free (its call's slot plus the window), not a promise.
    busy: bool = False
    # Not taken because the caller's turn on a shared key has not come: ``at`` is its turn.
    turn: bool = False


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
# A moment already past counts as now (and new rows' '-infinity' as well).
_LOCK: Final = """
SELECT key, greatest(next_at, clock_timestamp()) AS next_at, clock_timestamp() AS now
FROM pacing_slots WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE
"""
_MOVE: Final = """
UPDATE pacing_slots AS p SET next_at = w.at
FROM unnest($1::text[], $2::timestamptz[]) AS w(key, at)
WHERE p.key = w.key
"""
# A share's turn on a key, and how many other shares' turns lie ahead (those taking turns;
# counted up to a bound, past which a step is long enough anyway).
_TURN: Final = """
SELECT (SELECT turn_at FROM pacing_turns WHERE key = $1 AND share = $2) AS turn_at,
       (SELECT count(*) FROM (
            SELECT 1 FROM pacing_turns
            WHERE key = $1 AND turn_at > clock_timestamp() AND share <> $2 LIMIT $3) AS ahead
       ) AS others
"""
_SET_TURN: Final = """
INSERT INTO pacing_turns (key, share, turn_at) VALUES ($1, $2, $3)
ON CONFLICT (key, share) DO UPDATE SET turn_at = EXCLUDED.turn_at
"""
# A turn long past says nothing a missing row would not: such rows go, so a key's turns
# stay as many as the users of the last minutes.
_FORGET_TURNS: Final = """
DELETE FROM pacing_turns WHERE key = $1 AND turn_at < clock_timestamp() - $2::interval
"""
MAX_SHARES_COUNTED: Final = 1000
TURNS_KEPT: Final = timedelta(minutes=10)
# A lane is given back only by the call that parked it (compare-and-set on the parked
# moment): a lane whose caller died and that another call took since is left alone. Its
# window runs from now on the database clock: the statement runs after the answer.
_SETTLE_LANE: Final = """
UPDATE pacing_slots SET next_at = clock_timestamp() + $3::interval WHERE key = $1 AND next_at = $2
"""


def _merged(keys: Iterable[PaceKey]) -> dict[str, PaceKey]:
    """Keys by name; the same key twice counts once, with the longer interval."""
    merged: dict[str, PaceKey] = {}
    for pace in keys:
        seen = merged.get(pace.key)
        if seen is None or pace.interval > seen.interval:
            merged[pace.key] = pace
    return merged


async def _turn(conn: Conn, pace: PaceKey) -> tuple[datetime | None, int]:
    """The share's turn on the key (None: never taken one), and how many others take turns."""
    row = await conn.fetchrow(_TURN, pace.key, pace.share, MAX_SHARES_COUNTED)
    assert row is not None  # a SELECT of two subqueries: always one row
    return row["turn_at"], row["others"]


async def _reserve_locked(
    conn: Conn,
    keys: dict[str, PaceKey],
    not_before: datetime | None,
    within: timedelta | None,
) -> Slot:
    """The common slot of ``keys``, their rows (and lanes) locked together in name order:
    the latest of the plain keys' next slots and of each windowed key's hold and soonest
    lane. Plain keys move to slot + interval, the chosen lanes are parked ``IN_FLIGHT``;
    nothing moves when the slot is more than ``within`` away."""
    names = sorted({name for pace in keys.values() for name in (pace.key, *pace.lane_keys())})
    async with conn.transaction():
        await conn.execute(_ENSURE_ROWS, names)
        rows = await conn.fetch(_LOCK, names)
        next_at = {row["key"]: row["next_at"] for row in rows}
        now = rows[0]["now"]
        slot = now if not_before is None else max(now, not_before)
        chosen: dict[str, str] = {}
        busy = False
        for pace in keys.values():
            slot = max(slot, next_at[pace.key])
            if lanes := pace.lane_keys():
                lane = chosen[pace.key] = min(lanes, key=lambda name: (next_at[name], name))
                free = next_at[lane]
                if free - now > pace.interval:  # parked: its call is still out
                    busy = True
                    free = max(now, free - IN_FLIGHT + pace.interval)
                slot = max(slot, free)
        turns = [(pace, *await _turn(conn, pace)) for pace in keys.values() if pace.share]
        turn = max((at for _, at, _ in turns if at is not None), default=None)
        if turn is not None and turn > now:
            # Not this user's turn yet: the slot stays for whoever's turn it is. (Checked
            # against now, not the slot: a user holds at most one slot ahead of the clock.)
            return Slot(turn, taken=False, turn=True)
        if busy or (within is not None and slot - now > within):
            return Slot(slot, taken=False, busy=busy)
        moves = {
            chosen.get(pace.key, pace.key): slot
            + (IN_FLIGHT if pace.key in chosen else pace.interval)
            for pace in keys.values()
        }
        await conn.execute(_MOVE, list(moves), list(moves.values()))
        for pace, _, others in turns:
            await conn.execute(_SET_TURN, pace.key, pace.share, slot + pace.fair_step(1 + others))
            await conn.execute(_FORGET_TURNS, pace.key, TURNS_KEPT)
    return Slot(slot, lanes=tuple((lane, moves[lane]) for lane in chosen.values()))


async def reserve_within(
    conn: Conn,
    keys: Iterable[PaceKey],
    within: timedelta | None,
    not_before: datetime | None = None,
) -> Slot:
    """One slot valid on every key: the latest of their next slots; each key then moves to
    that slot plus its own interval (atomically; see the module docstring), but only when
    the common slot is at most ``within`` away (None: however far): otherwise ``taken`` is
    False, nothing moved and ``at`` says when to come back. A slot holding lanes must be
    given back through :func:`after_call`; with every lane of a windowed key out, nothing is
    taken (``busy``): :class:`Pacer` waits for a lane. A caller that would not wait that
    long spends no slot, so work put back never pushes later callers further out."""
    _check_aware(not_before, "not_before")
    merged = _merged(keys)
    if not merged:
        now: datetime = await conn.fetchval(_NOW, not_before)
        return Slot(now)
    if len(merged) == 1:
        [pace] = merged.values()
        if pace.lanes == 1 and pace.share is None and (not pace.interval or within is None):
            # One plain key: one statement, instead of a locking transaction. (A key with
            # no spacing, ListenBrainz's, only carries holds: taking its slot moves nothing
            # that matters, so it needs no refusal either.)
            at = await reserve(conn, pace.key, pace.interval, not_before)
            return Slot(at, taken=within is None or at - datetime.now(at.tzinfo) <= within)
    return await _reserve_locked(conn, merged, not_before, within)


# How often a caller waiting for a lane asks again, at least: a lane's call is answered
# some time after the earliest moment the lane could be free.
LANE_POLL: Final = timedelta(milliseconds=25)


class Pacer:
    """Reservations through a pool for one process: :func:`reserve_within`, except that a
    caller finding every lane of a windowed key out waits for one (asking again when the
    soonest could be free), and a caller whose turn on a shared key has not come waits for
    its turn, both inside its ``within``. Callers of one process wait for the same lanes in
    a queue, first come first served, so only the head asks the database; a caller waiting
    for its turn waits outside the queue, so the users behind it are not held up."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._queues: dict[tuple[str, ...], asyncio.Lock] = {}

    async def reserve(self, keys: Sequence[PaceKey], within: timedelta | None) -> Slot:
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within.total_seconds()

        def left() -> timedelta | None:
            return None if deadline is None else timedelta(seconds=max(deadline - loop.time(), 0))

        while True:
            slot = await self._reserve_once(keys, left())
            if not slot.turn or not await _waited_for(slot, left()):
                return slot

    async def _reserve_once(self, keys: Sequence[PaceKey], within: timedelta | None) -> Slot:
        windowed = tuple(sorted(pace.key for pace in keys if pace.lanes > 1))
        if not windowed:
            async with self._pool.acquire() as conn:
                return await reserve_within(conn, keys, within)
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within.total_seconds()

        def left() -> timedelta | None:
            return None if deadline is None else timedelta(seconds=deadline - loop.time())

        queue = self._queues.setdefault(windowed, asyncio.Lock())
        try:
            async with asyncio.timeout_at(deadline):
                await queue.acquire()
        except TimeoutError:
            assert within is not None
            return Slot(datetime.now(UTC) + within, taken=False, busy=True)
        try:
            while True:
                async with self._pool.acquire() as conn:
                    slot = await reserve_within(conn, keys, left())
                if not slot.busy or not await _waited_for(slot, left()):
                    return slot
        finally:
            queue.release()


async def _waited_for(slot: Slot, remaining: timedelta | None) -> bool:
    """Sleep until ``slot`` is due (looking again no sooner than ``LANE_POLL``); False,
    without sleeping, when that is beyond what ``remaining`` allows."""
    wait = max(slot.at - datetime.now(UTC), LANE_POLL)
    if remaining is not None and wait > remaining:
        return False
    await asyncio.sleep(wait.total_seconds())
    return True


async def after_call(
    conn: Conn,
    slot: Slot,
    keys: Iterable[PaceKey],
    sent_at: datetime,
    answered_at: datetime,
    service_wait_s: float | None = None,
) -> None:
    """After a call made on ``slot`` (answered, or given up on at ``answered_at``): space
    the next call on each key from when this one really went out (a call sent late after a
    busy moment must not let the next slot land too close), or from its answer for keys
    that say so (``PaceKey.after_answer``); give back the lanes at answer + window; and
    honour the service's own wait (``service_wait_s``) on every key."""
    service_until = (
        None if not service_wait_s else datetime.now(UTC) + timedelta(seconds=service_wait_s)
    )
    parked = dict(slot.lanes)
    for pace in _merged(keys).values():
        if lanes := [lane for lane in pace.lane_keys() if lane in parked]:
            for lane in lanes:
                await conn.execute(_SETTLE_LANE, lane, parked[lane], pace.interval)
            if service_until is not None:
                await hold(conn, pace.key, service_until)
            continue
        until = (answered_at if pace.after_answer else sent_at) + pace.interval
        if service_until is not None:
            until = max(until, service_until)
        if until > sent_at:
            await hold(conn, pace.key, until)
