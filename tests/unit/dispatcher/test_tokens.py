"""The pure part of token refresh: deciding from a connection's token state, the refresh
request, and reading the token endpoint's answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scrobble_shared.trackers.http import AppCredentials, HttpResponse
from scrobble_shared.trackers.refresh import (
    DEFAULT_ACCESS_TTL,
    INTERRUPTED_REASON,
    REFRESH_LEASE,
    Decision,
    NewTokens,
    NotNow,
    RefreshConfig,
    Refused,
    TokenState,
    build_refresh,
    decide,
    parse_refresh,
    refused_reason,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = RefreshConfig.trakt("https://auth.trakt.tv/", AppCredentials("cid", "secret"), None)


def state(**fields: Any) -> TokenState:
    base: dict[str, Any] = {
        "version": 3,
        "expires_at": NOW + timedelta(days=1),
        "has_refresh_token": True,
    }
    return TokenState(**{**base, **fields})


def answer(status: int, body: Any = None, **headers: str) -> HttpResponse:
    raw = b"" if body is None else json.dumps(body).encode()
    return HttpResponse(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, raw)


# --- decide --------------------------------------------------------------------------------


def test_a_live_token_is_used() -> None:
    assert decide(state(), NOW) is Decision.USE
    assert decide(state(expires_at=None), NOW) is Decision.USE


def test_an_expired_token_is_refreshed_before_the_call() -> None:
    assert decide(state(expires_at=NOW), NOW) is Decision.REFRESH
    assert decide(state(expires_at=NOW - timedelta(seconds=1)), NOW) is Decision.REFRESH


def test_a_rejected_token_is_refreshed() -> None:
    assert decide(state(), NOW, rejected_version=3) is Decision.REFRESH


def test_a_token_rejected_after_someone_else_refreshed_is_not_refreshed_again() -> None:
    assert decide(state(version=4), NOW, rejected_version=3) is Decision.USE


def test_without_a_refresh_token_the_user_must_reconnect() -> None:
    assert decide(state(has_refresh_token=False), NOW, rejected_version=3) is Decision.RECONNECT
    expired = state(has_refresh_token=False, expires_at=NOW - timedelta(hours=1))
    assert decide(expired, NOW) is Decision.RECONNECT


@pytest.mark.parametrize("rejected", [None, 3])
def test_a_refresh_in_flight_elsewhere_makes_others_wait(rejected: int | None) -> None:
    marked = state(refresh_started_at=NOW - timedelta(seconds=10), refresh_from_version=3)
    assert decide(marked, NOW, rejected_version=rejected) is Decision.WAIT


def test_a_mark_older_than_the_lease_is_an_interrupted_refresh() -> None:
    marked = state(refresh_started_at=NOW - REFRESH_LEASE, refresh_from_version=3)
    assert decide(marked, NOW) is Decision.RECOVER
    custom = state(refresh_started_at=NOW - timedelta(seconds=5), refresh_from_version=3)
    assert decide(custom, NOW, lease=timedelta(seconds=5)) is Decision.RECOVER
    bare = state(
        refresh_started_at=NOW - REFRESH_LEASE, refresh_from_version=3, has_refresh_token=False
    )
    assert decide(bare, NOW) is Decision.RECONNECT


def test_a_mark_from_another_version_is_stale_and_ignored() -> None:
    stale = state(refresh_started_at=NOW - timedelta(seconds=1), refresh_from_version=2)
    assert decide(stale, NOW) is Decision.USE


# --- the request ---------------------------------------------------------------------------


def test_the_refresh_request_follows_trakt_oauth() -> None:
    request = build_refresh(CONFIG, "the-refresh-token")
    assert request.method == "POST"
    assert request.url == "https://auth.trakt.tv/oauth/token"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "refresh_token": "the-refresh-token",
        "client_id": "cid",
        "client_secret": "secret",
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        "grant_type": "refresh_token",
    }
    own = RefreshConfig.trakt("http://h/trakt-auth", AppCredentials("c", "s"), "https://x/cb")
    assert build_refresh(own, "r").json["redirect_uri"] == "https://x/cb"


# --- the answer ----------------------------------------------------------------------------


def test_a_new_pair_with_its_expiry() -> None:
    body = {"access_token": "a2", "refresh_token": "r2", "expires_in": 7776000, "scope": "public"}
    result = parse_refresh(answer(200, body), NOW, CONFIG)
    assert result == NewTokens("a2", "r2", NOW + timedelta(seconds=7776000))
    assert "a2" not in repr(result)
    assert "r2" not in repr(result)


def test_a_pair_without_expires_in_gets_the_default_lifetime() -> None:
    result = parse_refresh(answer(200, {"access_token": "a", "refresh_token": "r"}), NOW)
    assert isinstance(result, NewTokens)
    assert result.expires_at == NOW + DEFAULT_ACCESS_TTL


@pytest.mark.parametrize("body", [{}, {"access_token": "a"}, {"refresh_token": "r"}, None])
def test_a_200_without_a_pair_is_no_verdict_and_maybe_spent(body: Any) -> None:
    result = parse_refresh(answer(200, body), NOW)
    assert isinstance(result, NotNow)
    assert result.spent_maybe


def test_invalid_grant_is_refused() -> None:
    body = {"error": "invalid_grant", "error_description": "used"}
    result = parse_refresh(answer(400, body), NOW, CONFIG)
    assert result == Refused(
        "Trakt refused the token refresh (invalid_grant); reconnect Trakt", 400
    )
    assert refused_reason(result, interrupted=True) == INTERRUPTED_REASON
    assert refused_reason(result, interrupted=False) == result.reason


def test_a_bad_client_is_refused() -> None:
    result = parse_refresh(answer(401, {"error": "invalid_client"}), NOW)
    assert isinstance(result, Refused)
    assert "invalid_client" in result.reason


def test_a_rate_limited_refresh_did_not_spend_the_token() -> None:
    result = parse_refresh(answer(429, None, retry_after="7"), NOW)
    assert result == NotNow("Trakt rate-limited the token refresh", 429, False, 7.0)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_may_have_spent_the_token(status: int) -> None:
    result = parse_refresh(answer(status), NOW)
    assert isinstance(result, NotNow)
    assert result.spent_maybe
    assert result.http_status == status
