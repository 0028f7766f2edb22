"""Refreshing access tokens (Trakt), the pure part: what to do from a connection's token
state, the refresh request, and what its answer means. No network, clock or database here.

Trakt refresh tokens are single-use: each refresh returns a new pair and kills the old one.
So the dispatcher (delivery.py, repository.py):

1. records in Postgres, in its own committed statement, that a refresh is in flight for the
   connection (``refresh_started_at`` and the ``token_version`` it starts from);
2. calls the token endpoint;
3. writes the new pair (encrypted) with compare-and-set on ``token_version`` and clears the
   mark, in one statement;
4. only then uses the new access token (the work is retried once with it).

A replica that finds a fresh mark waits instead of spending the refresh token again. A mark
older than :data:`REFRESH_LEASE` with an unchanged version means a refresh was interrupted
(the process died between 2 and 3, or the answer never came): the stored refresh token is
tried once more; if the service had spent it, it answers ``invalid_grant`` and the connection
is marked as needing reconnect with :data:`INTERRUPTED_REASON`, visibly, never silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from scrobble_shared.trackers.http import (
    USER_AGENT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    readable_reason,
    retry_after_s,
    scrub,
)

# How long a refresh may be in flight before another attempt treats it as interrupted.
REFRESH_LEASE: Final = timedelta(minutes=2)
# How long work waits while another replica's refresh is in flight.
REFRESH_IN_FLIGHT_WAIT: Final = timedelta(seconds=15)
# A refresh the service could not take now (429, or no answer with the token unspent).
REFRESH_RETRY_WAIT: Final = timedelta(minutes=1)
# When the service gives no expires_in (Trakt access tokens last 7 days).
DEFAULT_ACCESS_TTL: Final = timedelta(days=7)
INTERRUPTED_REASON: Final = "a token refresh was interrupted; reconnect Trakt"
OOB_REDIRECT_URI: Final = "urn:ietf:wg:oauth:2.0:oob"


@dataclass(frozen=True)
class TokenState:
    """A connection's tokens as far as refreshing goes (never the tokens themselves)."""

    version: int
    expires_at: datetime | None
    has_refresh_token: bool
    refresh_started_at: datetime | None = None
    refresh_from_version: int | None = None


class Decision(StrEnum):
    USE = "use"  # the stored access token is good to use
    REFRESH = "refresh"  # spend the refresh token now
    RECOVER = "recover"  # an earlier refresh was interrupted: try the stored one once
    WAIT = "wait"  # another process is refreshing: come back shortly
    RECONNECT = "reconnect"  # nothing to refresh with: the user must connect again


def decide(
    state: TokenState,
    now: datetime,
    *,
    rejected_version: int | None = None,
    lease: timedelta = REFRESH_LEASE,
) -> Decision:
    """What to do before (or after) a call. ``rejected_version``: the service refused the
    access token of that version (HTTP 401); None before any call."""
    in_flight = state.refresh_started_at is not None and state.refresh_from_version == state.version
    if in_flight:
        assert state.refresh_started_at is not None
        if now - state.refresh_started_at < lease:
            return Decision.WAIT
        return Decision.RECOVER if state.has_refresh_token else Decision.RECONNECT
    if rejected_version is not None and rejected_version != state.version:
        return Decision.USE  # someone refreshed since that token was read: use the new one
    expired = state.expires_at is not None and state.expires_at <= now
    if rejected_version is None and not expired:
        return Decision.USE
    return Decision.REFRESH if state.has_refresh_token else Decision.RECONNECT


@dataclass(frozen=True)
class RefreshConfig:
    """Where and as whom to refresh one service's tokens."""

    token_url: str  # e.g. TRAKT_AUTH_URL + /oauth/token
    app: AppCredentials
    redirect_uri: str = OOB_REDIRECT_URI
    service_label: str = "Trakt"

    @classmethod
    def trakt(
        cls, auth_url: str, app: AppCredentials, redirect_uri: str | None = None
    ) -> RefreshConfig:
        return cls(f"{auth_url.rstrip('/')}/oauth/token", app, redirect_uri or OOB_REDIRECT_URI)


def build_refresh(config: RefreshConfig, refresh_token: str) -> HttpRequest:
    """The token-endpoint call that spends ``refresh_token`` for a new pair."""
    return HttpRequest(
        method="POST",
        url=config.token_url,
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        json={
            "refresh_token": refresh_token,
            "client_id": config.app.client_id,
            "client_secret": config.app.client_secret,
            "redirect_uri": config.redirect_uri,
            "grant_type": "refresh_token",
        },
    )


@dataclass(frozen=True)
class NewTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime


class _PlainReason:
    """A result whose reason may quote the token endpoint's answer: plain and short
    (``readable_reason``); ``scrubbed`` takes the refresh request's secrets out of it."""

    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", readable_reason(self.reason))


@dataclass(frozen=True)
class Refused(_PlainReason):
    """The service will not refresh (the refresh token is spent, revoked or unknown)."""

    reason: str
    http_status: int | None

    def scrubbed(self, secrets: Iterable[str]) -> Refused:
        return replace(self, reason=scrub(self.reason, secrets))


@dataclass(frozen=True)
class NotNow(_PlainReason):
    """No verdict: try again later. ``spent_maybe``: the service may have used the refresh
    token (server error, no answer), so the in-flight mark stays until its lease runs out."""

    reason: str
    http_status: int | None
    spent_maybe: bool
    retry_after_s: float | None = None

    def scrubbed(self, secrets: Iterable[str]) -> NotNow:
        return replace(self, reason=scrub(self.reason, secrets))


RefreshResult = NewTokens | Refused | NotNow


def parse_refresh(
    response: HttpResponse, now: datetime, config: RefreshConfig | None = None
) -> RefreshResult:
    """What the token endpoint's answer means; ``now`` dates the new token's expiry."""
    label = config.service_label if config else "Trakt"
    status = response.status
    body = response.json()
    body = body if isinstance(body, dict) else {}
    if status == 200:
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            # 200 without a usable pair: the old one may be dead already; no guessing.
            return NotNow(f"{label} answered the refresh without a token pair", status, True)
        expires_in = body.get("expires_in")
        ttl = (
            timedelta(seconds=expires_in)
            if isinstance(expires_in, int | float)
            and not isinstance(expires_in, bool)
            and expires_in > 0
            else DEFAULT_ACCESS_TTL
        )
        return NewTokens(access, refresh, now + ttl)
    if status == 429:
        return NotNow(
            f"{label} rate-limited the token refresh", status, False, retry_after_s(response)
        )
    if status >= 500:
        return NotNow(f"{label} token refresh failed (HTTP {status})", status, True)
    error = body.get("error")
    detail = f" ({error})" if isinstance(error, str) and error else f" (HTTP {status})"
    return Refused(f"{label} refused the token refresh{detail}; reconnect {label}", status)


def refused_reason(result: Refused, *, interrupted: bool) -> str:
    """The reason shown on the connection: an interrupted refresh says so."""
    return INTERRUPTED_REASON if interrupted else result.reason
