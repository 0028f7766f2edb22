"""What becomes of a piece of work after a call: a pure decision, tested with plain values.
``record.py`` applies a decision to Postgres; ``delivery.py`` makes the calls.

The dispatcher's failure policy, as decisions:

- DONE / ALREADY_DONE: :class:`Sent`.
- RETRY (and a call that got no answer): :class:`Retry` after max(growing backoff, the
  service's wait), up to ``max_retries`` attempts; then :class:`Dead`.
- Rate-limited (a RETRY the service asked for: 429, Last.fm error 29): pacing, not failure.
  :class:`Retry` after what the service said (``RATE_LIMIT_WAIT`` when it said nothing) plus
  a jitter of up to a tenth of that (at least ``RATE_LIMIT_JITTER``), fixed per connection
  so a connection's work comes back together; no attempt is spent (``counted=False``). The
  bound: work still rate-limited ``DeliveryPolicy.rate_limited_for`` (24 h) after it was
  queued is :class:`Dead`, so a service that only ever answers 429 ends the work then.
- REFRESH / RECONNECT that no refresh answered: :class:`Hold` an hour with ``reconnect``
  (the connection is marked as needing reconnect, the work waits instead of dying).
- PERMANENT: :class:`Dead` with its reason.
- An item the service cannot name: :class:`Failed` (``unresolved``): replaying the same
  item cannot name it either, so it is neither retried nor dead-lettered.
- Now playing (:func:`best_effort`, the one place this rule is stated): anything but
  :class:`Sent` is :class:`Failed`: never retried, held or dead-lettered, since later it
  would say "playing" about something long over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from scrobble_shared.trackers.http import Outcome, OutcomeKind
from scrobble_shared.work import WorkKind

# How long rate-limited work may go on waiting, counted from when it was queued.
RATE_LIMITED_FOR: Final = timedelta(hours=24)
# The wait after a rate-limit answer that says nothing of how long (Last.fm's default too).
RATE_LIMIT_WAIT: Final = timedelta(seconds=10)
# The least spread of the jitter added to a rate-limit wait.
RATE_LIMIT_JITTER: Final = timedelta(seconds=1)
# How long work of a connection that needs reconnecting waits before it looks again.
RECONNECT_WAIT: Final = timedelta(hours=1)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_retries: int
    retry_backoff: timedelta
    dead_letter_prefix: str  # '<prefix><service>.dlq'
    app_keys: dict[str, str]  # service -> app id used in pacing keys
    rate_limited_for: timedelta = RATE_LIMITED_FOR


@dataclass(frozen=True)
class WorkFacts:
    """What a decision needs to know of the work: its kind, the attempts spent (this one
    included), when it was queued and whose it is."""

    kind: WorkKind
    attempts: int
    queued_at: datetime
    connection_id: uuid.UUID


@dataclass(frozen=True)
class Sent:
    kind: OutcomeKind  # DONE or ALREADY_DONE
    status: int | None = None


@dataclass(frozen=True)
class Retry:
    """Again at ``at``; ``counted`` False for a rate limit, which spends no attempt."""

    at: datetime
    reason: str
    status: int | None = None
    counted: bool = True


@dataclass(frozen=True)
class Hold:
    """Put back until ``at`` without spending an attempt; ``reconnect``: the connection is
    marked as needing reconnect first."""

    at: datetime
    reason: str
    reconnect: bool = False


@dataclass(frozen=True)
class Failed:
    """Over, unsent, and not dead-lettered (now playing; an item the service cannot name)."""

    reason: str
    status: int | None = None
    unresolved: bool = False


@dataclass(frozen=True)
class Dead:
    """Over, unsent: in history with the reason and on the dead-letter topic."""

    reason: str
    status: int | None = None


Decision = Sent | Retry | Hold | Failed | Dead


def best_effort(kind: WorkKind, decision: Decision) -> Decision:
    """Now playing that is not sent has failed: it is never retried, held or dead."""
    if kind is not WorkKind.NOW_PLAYING or isinstance(decision, Sent | Failed):
        return decision
    status = decision.status if isinstance(decision, Retry | Dead) else None
    return Failed(decision.reason, status)


def decide(outcome: Outcome, work: WorkFacts, policy: DeliveryPolicy, now: datetime) -> Decision:
    """What becomes of ``work`` after a call that ended in ``outcome``."""
    return best_effort(work.kind, _after_outcome(outcome, work, policy, now))


def _after_outcome(
    outcome: Outcome, work: WorkFacts, policy: DeliveryPolicy, now: datetime
) -> Decision:
    kind, reason, status = outcome.kind, outcome.reason, outcome.http_status
    if kind in (OutcomeKind.DONE, OutcomeKind.ALREADY_DONE):
        return Sent(kind, status)
    if kind in (OutcomeKind.REFRESH, OutcomeKind.RECONNECT):
        return Hold(now + RECONNECT_WAIT, reason, reconnect=True)
    if kind is OutcomeKind.RETRY and outcome.rate_limited:
        jitter = connection_jitter(work.connection_id)
        at = after_rate_limit(policy, outcome, work.queued_at, now, jitter)
        if at is None:
            waited = policy.rate_limited_for
            return Dead(f"still rate-limited {waited} after it was queued: {reason}", status)
        return Retry(at, reason, status, counted=False)
    if kind is OutcomeKind.RETRY and work.attempts <= policy.max_retries:
        delay = backoff(policy, work.attempts)
        if outcome.retry_after_s is not None:
            delay = max(delay, timedelta(seconds=outcome.retry_after_s))
        return Retry(now + delay, reason, status)
    if kind is OutcomeKind.RETRY:
        return Dead(f"gave up after {work.attempts} attempts: {reason}", status)
    return Dead(reason, status)


def backoff(policy: DeliveryPolicy, attempts: int) -> timedelta:
    """Growing with each attempt: backoff, 2x, 4x ..."""
    return policy.retry_backoff * (1 << max(attempts - 1, 0))


def after_rate_limit(
    policy: DeliveryPolicy,
    outcome: Outcome,
    queued_at: datetime,
    now: datetime,
    jitter: float,
) -> datetime | None:
    """When rate-limited work goes again: after what the service said to wait (or
    ``RATE_LIMIT_WAIT``), plus ``jitter`` (0 to 1) of a tenth of that wait (at least of
    ``RATE_LIMIT_JITTER``). None once the work was queued ``policy.rate_limited_for`` ago
    or more: it has waited long enough, and is dead."""
    if now - queued_at >= policy.rate_limited_for:
        return None
    said = outcome.retry_after_s
    wait = RATE_LIMIT_WAIT if said is None else timedelta(seconds=said)
    return now + wait + max(wait / 10, RATE_LIMIT_JITTER) * jitter


def connection_jitter(connection_id: uuid.UUID) -> float:
    """A fraction (0 to 1) fixed per connection: its rate-limited work comes back together
    (and can go in one call again), different connections' at different moments."""
    # The low bits of a (random) connection id: spread, not secrecy.
    return connection_id.int % 1000 / 1000


def unexpected_error(exc: BaseException) -> Dead:
    """Work whose handling raised what no rule expects (a bug, or data no code path
    reads): dead with the error's kind, so one bad item cannot rewind its batch forever.
    The message stays in the log: it may quote the work."""
    return Dead(f"the dispatcher failed on this work ({type(exc).__name__}); see its log")
