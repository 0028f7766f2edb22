"""``decide``: what becomes of work after each kind of answer, with plain values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from scrobble_dispatcher.decide import (
    RECONNECT_WAIT,
    Dead,
    Decision,
    DeliveryPolicy,
    Failed,
    Hold,
    Retry,
    Sent,
    WorkFacts,
    best_effort,
    decide,
    unexpected_error,
)
from scrobble_shared.trackers.http import Outcome, OutcomeKind
from scrobble_shared.work import WorkKind

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
POLICY = DeliveryPolicy(3, timedelta(minutes=1), "scrobble.", {})
# A connection whose jitter fraction is 0: rate-limit waits come out exact.
CONNECTION = uuid.UUID(int=1000)


def facts(kind: WorkKind = WorkKind.SCROBBLE, attempts: int = 1, queued_s: float = 60) -> WorkFacts:
    return WorkFacts(kind, attempts, NOW - timedelta(seconds=queued_s), CONNECTION)


CASES: list[tuple[str, Outcome, WorkFacts, Decision]] = [
    ("done", Outcome.done("ok", 201), facts(), Sent(OutcomeKind.DONE, 201)),
    (
        "already done",
        Outcome.already_done("had it", 409),
        facts(),
        Sent(OutcomeKind.ALREADY_DONE, 409),
    ),
    (
        "first 5xx: backoff",
        Outcome.retry("503", 503),
        facts(attempts=1),
        Retry(NOW + timedelta(minutes=1), "503", 503),
    ),
    (
        "third 5xx: backoff doubled twice",
        Outcome.retry("503", 503),
        facts(attempts=3),
        Retry(NOW + timedelta(minutes=4), "503", 503),
    ),
    (
        "the service's wait when longer than the backoff",
        Outcome.retry("503", 503, after_s=600),
        facts(attempts=1),
        Retry(NOW + timedelta(seconds=600), "503", 503),
    ),
    (
        "out of attempts",
        Outcome.retry("503", 503),
        facts(attempts=4),
        Dead("gave up after 4 attempts: 503", 503),
    ),
    (
        "rate-limited: the service's wait, no attempt spent, whatever the attempts",
        Outcome.slow_down("slow down", 429, 10),
        facts(attempts=9),
        Retry(NOW + timedelta(seconds=10), "slow down", 429, counted=False),
    ),
    (
        "rate-limited for a day since it was queued",
        Outcome.slow_down("slow down", 429, 10),
        facts(queued_s=24 * 3600),
        Dead("still rate-limited 1 day, 0:00:00 after it was queued: slow down", 429),
    ),
    (
        "token refused: hold for reconnect",
        Outcome.reconnect("token revoked", 401),
        facts(),
        Hold(NOW + RECONNECT_WAIT, "token revoked", reconnect=True),
    ),
    (
        "refresh that nothing answered: hold for reconnect",
        Outcome.refresh("expired", 401),
        facts(),
        Hold(NOW + RECONNECT_WAIT, "expired", reconnect=True),
    ),
    ("permanent", Outcome.permanent("no such item", 404), facts(), Dead("no such item", 404)),
]


@pytest.mark.parametrize(("case", "outcome", "work", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decide(case: str, outcome: Outcome, work: WorkFacts, expected: Decision) -> None:
    assert decide(outcome, work, POLICY, NOW) == expected


@pytest.mark.parametrize(("case", "outcome", "work", "expected"), CASES, ids=[c[0] for c in CASES])
def test_now_playing_is_sent_or_failed_never_anything_else(
    case: str, outcome: Outcome, work: WorkFacts, expected: Decision
) -> None:
    playing = WorkFacts(WorkKind.NOW_PLAYING, work.attempts, work.queued_at, work.connection_id)
    decided = decide(outcome, playing, POLICY, NOW)
    if isinstance(expected, Sent):
        assert decided == expected
    else:
        status = expected.status if isinstance(expected, Retry | Dead) else None
        assert decided == Failed(expected.reason, status)


def test_best_effort_leaves_other_work_alone_and_fails_held_now_playing() -> None:
    hold = Hold(NOW, "busy")
    assert best_effort(WorkKind.SCROBBLE, hold) == hold
    assert best_effort(WorkKind.NOW_PLAYING, hold) == Failed("busy")
    unresolved = Failed("not found", unresolved=True)
    assert best_effort(WorkKind.NOW_PLAYING, unresolved) == unresolved


def test_an_unexpected_error_is_dead_naming_its_kind_not_its_message() -> None:
    decision = unexpected_error(ValueError("token=secret-value"))
    assert isinstance(decision, Dead)
    assert "ValueError" in decision.reason
    assert "secret-value" not in decision.reason
