"""Issue 20, point 1, the pure parts: every client reads "slow down" (429, Last.fm error 29)
as a rate-limited retry, apart from failures (5xx, timeouts), with the wait the service
said; and when rate-limited work goes again, or is dead."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scrobble_dispatcher.clients.anilist import AniListClient
from scrobble_dispatcher.clients.base import (
    AppCredentials,
    HttpResponse,
    Outcome,
    OutcomeKind,
    ServiceClient,
)
from scrobble_dispatcher.clients.lastfm import LastfmClient
from scrobble_dispatcher.clients.listenbrainz import ListenBrainzClient
from scrobble_dispatcher.clients.simkl import SimklClient
from scrobble_dispatcher.clients.trakt import TraktClient
from scrobble_dispatcher.delivery import (
    RATE_LIMIT_JITTER,
    RATE_LIMIT_WAIT,
    RATE_LIMITED_FOR,
    DeliveryPolicy,
    after_rate_limit,
    connection_jitter,
)
from scrobble_shared.work import WorkKind
from tests.unit.dispatcher.test_trakt_client import content
from tests.unit.dispatcher.test_trakt_client import work as trakt_work

APP = AppCredentials("app-id", "app-secret")
CLIENTS: dict[str, ServiceClient] = {
    "trakt": TraktClient("https://api.trakt.tv", APP),
    "simkl": SimklClient("https://api.simkl.com", APP),
    "lastfm": LastfmClient("https://ws.audioscrobbler.com/2.0/", APP),
    "listenbrainz": ListenBrainzClient("https://api.listenbrainz.org/1"),
    "anilist": AniListClient("https://graphql.anilist.co"),
}


# Any scrobble does: the answers below are read the same whatever the work.
SCROBBLE = trakt_work(WorkKind.SCROBBLE, content(type="movie", title="Heat", year=1995))


def answer(status: int, body: Any = None, **headers: str) -> HttpResponse:
    raw = b"" if body is None else json.dumps(body).encode()
    return HttpResponse(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, raw)


@pytest.mark.parametrize("service", sorted(CLIENTS))
def test_a_429_is_rate_limited_with_the_wait_it_said(service: str) -> None:
    client = CLIENTS[service]
    outcome = client.classify(SCROBBLE, answer(429, Retry_After="10"))
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.rate_limited
    assert outcome.http_status == 429
    assert outcome.retry_after_s == 10.0
    # The same wait holds the service's pacing key for every replica.
    assert client.wait_before_next_s(answer(429, Retry_After="10")) == 10.0


def test_listenbrainz_says_its_wait_in_x_ratelimit_reset_in() -> None:
    client = CLIENTS["listenbrainz"]
    refused = answer(429, {"code": 429, "error": "slow down"}, X_RateLimit_Reset_In="10")
    outcome = client.classify(SCROBBLE, refused)
    assert (outcome.rate_limited, outcome.retry_after_s) == (True, 10.0)
    # A 429 holds the key even when it does not say that no call is left.
    assert client.wait_before_next_s(refused) == 10.0


def test_lastfm_error_29_is_rate_limited_whatever_the_status() -> None:
    client = CLIENTS["lastfm"]
    for status in (200, 429, 503):
        outcome = client.classify(SCROBBLE, answer(status, {"error": 29, "message": "no"}))
        assert outcome.kind is OutcomeKind.RETRY
        assert outcome.rate_limited


@pytest.mark.parametrize("service", sorted(CLIENTS))
@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_failures_not_rate_limits(service: str, status: int) -> None:
    outcome = CLIENTS[service].classify(SCROBBLE, answer(status, Retry_After="10"))
    assert outcome.kind is OutcomeKind.RETRY
    assert not outcome.rate_limited


POLICY = DeliveryPolicy(3, timedelta(minutes=5), "scrobble.", {})
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_rate_limited_work_waits_what_the_service_said_plus_a_little() -> None:
    limited = Outcome.slow_down("slow down", 429, 10.0)
    queued = NOW - timedelta(minutes=1)
    assert after_rate_limit(POLICY, limited, queued, NOW, 0.0) == NOW + timedelta(seconds=10)
    # The jitter spreads over a tenth of the wait, at least a second.
    assert after_rate_limit(POLICY, limited, queued, NOW, 1.0) == NOW + timedelta(seconds=11)
    long = Outcome.slow_down("slow down", 429, 600.0)
    assert after_rate_limit(POLICY, long, queued, NOW, 0.5) == NOW + timedelta(seconds=630)


def test_rate_limited_work_without_a_wait_waits_the_default() -> None:
    silent = Outcome.slow_down("slow down", 429)
    at = after_rate_limit(POLICY, silent, NOW, NOW, 0.0)
    assert at == NOW + RATE_LIMIT_WAIT
    assert after_rate_limit(POLICY, silent, NOW, NOW, 1.0) == NOW + RATE_LIMIT_WAIT + max(
        RATE_LIMIT_WAIT / 10, RATE_LIMIT_JITTER
    )


def test_work_still_rate_limited_a_day_after_it_was_queued_is_dead() -> None:
    limited = Outcome.slow_down("slow down", 429, 10.0)
    assert POLICY.rate_limited_for == timedelta(hours=24)  # the documented bound
    almost = NOW - RATE_LIMITED_FOR + timedelta(seconds=1)
    assert after_rate_limit(POLICY, limited, almost, NOW, 0.0) is not None
    assert after_rate_limit(POLICY, limited, NOW - RATE_LIMITED_FOR, NOW, 0.0) is None


def test_the_jitter_is_fixed_per_connection_and_spread_between_them() -> None:
    connections = [uuid.uuid4() for _ in range(200)]
    fractions = [connection_jitter(c) for c in connections]
    assert all(0 <= f < 1 for f in fractions)
    assert [connection_jitter(c) for c in connections] == fractions
    assert len(set(fractions)) > 100
