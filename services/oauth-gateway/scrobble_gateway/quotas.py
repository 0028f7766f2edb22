"""Per-user quotas of the API: a token bucket per user and policy, in each gateway process.

Two policies: ``reads`` (GET, HEAD, OPTIONS), ``GATEWAY_QUOTA_READS_PER_MINUTE`` (600), and
``writes`` (everything else), ``GATEWAY_QUOTA_WRITES_PER_MINUTE`` (60). A bucket holds at
most a minute's quota (the burst) and refills continuously at a sixtieth of it a second.
Each request takes one unit as it arrives, whatever it is answered; a request with none
left is a 429 and reaches no handler.

Which requests are charged: every request of an authenticated user, so every route behind
the bearer token, the admin routes included (an admin's script floods like any other; it
has its own buckets). Not charged: ``/healthz``, ``/readyz`` and ``/metrics`` (probes and
scrapers carry no user and must never be throttled; keep them internal), the OpenAPI
document (static), and the OAuth callbacks (no bearer token: each is spent with a
single-use state, and a user has at most ``GATEWAY_MAX_OPEN_OAUTH_STATES`` open). A request
refused with 401 has no user to charge: limits per address belong to the reverse proxy.

What a charged answer carries: the ``RateLimit-Policy`` and ``RateLimit`` fields of
draft-ietf-httpapi-ratelimit-headers (``"writes";q=60;w=60`` and ``"writes";r=59;t=1``:
``r`` units left, ``t`` seconds until one more is back, left out when the bucket is full).
That draft dropped the older ``RateLimit-Limit``/``-Remaining``/``-Reset`` trio in 2023;
the trio cannot say which of two policies it describes, the two fields name it. A 429 is
problem+json of the draft's ``quota-exceeded`` type with ``violated-policies``, and has
``Retry-After``, which every HTTP client knows.

The bound across replicas: buckets live in the process, so behind N replicas a user whose
requests are spread over all of them gets up to N times the quota (exactly the quota on
one replica, or with sticky routing). That keeps the hot path free of any Postgres round
trip. Memory is bounded: at most :data:`MAX_TRACKED_BUCKETS` buckets, the least recently
used dropped first; a bucket untouched for a minute is full, the same as none.

This module decides (no I/O, no aiohttp); ``quota_middleware.py`` charges requests and
writes the answers.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from scrobble_shared.settings import Settings

WINDOW_S: Final = 60
# 100,000 users active within a minute on one replica; a bucket is about 200 bytes.
MAX_TRACKED_BUCKETS: Final = 200_000
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Policy:
    """A quota: ``per_minute`` units, which is also the most a bucket holds."""

    name: str
    per_minute: int

    @property
    def per_second(self) -> float:
        return self.per_minute / WINDOW_S

    def field(self) -> str:
        """The policy as an item of ``RateLimit-Policy``."""
        return f'"{self.name}";q={self.per_minute};w={WINDOW_S}'


@dataclass(frozen=True)
class Bucket:
    tokens: float
    at: float  # monotonic seconds


@dataclass(frozen=True)
class Charge:
    """What taking a unit came to: ``allowed``, units left, seconds until one more."""

    policy: Policy
    allowed: bool
    remaining: int
    wait_s: int


# --- the decision (pure) --------------------------------------------------------------------


def charge(bucket: Bucket | None, policy: Policy, now: float) -> tuple[Bucket, Charge]:
    """Refill ``bucket`` up to ``now`` (none yet: full) and take one unit if there is one."""
    tokens = float(policy.per_minute)
    if bucket is not None:
        refilled = bucket.tokens + max(0.0, now - bucket.at) * policy.per_second
        tokens = min(tokens, refilled)
    allowed = tokens >= 1
    if allowed:
        tokens -= 1
    remaining = math.floor(tokens)
    wait_s = 0
    if tokens < policy.per_minute:
        wait_s = max(1, math.ceil((remaining + 1 - tokens) / policy.per_second))
    return Bucket(tokens, now), Charge(policy, allowed, remaining, wait_s)


def rate_limit_fields(charged: Charge) -> dict[str, str]:
    """``RateLimit-Policy`` and ``RateLimit`` for an answer charged to a policy."""
    current = f'"{charged.policy.name}";r={charged.remaining}'
    if charged.wait_s:
        current += f";t={charged.wait_s}"
    return {"RateLimit-Policy": charged.policy.field(), "RateLimit": current}


# --- the buckets of one process -------------------------------------------------------------


class QuotaBuckets:
    """Every user's buckets in this process, at most ``max_tracked`` of them."""

    def __init__(
        self,
        reads: Policy,
        writes: Policy,
        *,
        max_tracked: int = MAX_TRACKED_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reads, self.writes = reads, writes
        self._max_tracked = max_tracked
        self._clock = clock
        # Insertion order is recency: a bucket is taken out and put back on every charge.
        self._buckets: dict[tuple[uuid.UUID, str], Bucket] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> QuotaBuckets:
        return cls(
            Policy("reads", settings.gateway_quota_reads_per_minute),
            Policy("writes", settings.gateway_quota_writes_per_minute),
        )

    def policy_for(self, method: str) -> Policy:
        return self.reads if method in READ_METHODS else self.writes

    def __len__(self) -> int:
        return len(self._buckets)

    def charge(self, user_id: uuid.UUID, method: str) -> Charge:
        policy = self.policy_for(method)
        key = (user_id, policy.name)
        bucket, charged = charge(self._buckets.pop(key, None), policy, self._clock())
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_tracked:
            del self._buckets[next(iter(self._buckets))]
        return charged
