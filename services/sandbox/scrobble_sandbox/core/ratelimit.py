"""Sliding-window rate limits, configurable per fake and per test.

A sliding log (one timestamp per allowed request) is exact at the limit: N requests in any
window pass and the N+1th is refused, which is what the tests must be able to show.
"""

import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

from scrobble_sandbox.core.clock import now


@dataclass
class Limit:
    """At most `limit` requests in any `window` seconds."""

    limit: int
    window: float


@dataclass
class RateLimitConfig:
    """Base of each fake's limits: subclasses add `Limit` fields with the published figures."""

    enabled: bool = True

    def limits(self) -> dict[str, Limit]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), Limit)
        }

    def update(self, data: dict[str, Any]) -> None:
        """Apply an admin payload: {"enabled": bool, "<name>": {"limit": n, "window": s}}."""
        known = self.limits()
        for key, value in data.items():
            if key == "enabled":
                self.enabled = bool(value)
            elif key in known and isinstance(value, dict):
                current = known[key]
                setattr(
                    self,
                    key,
                    Limit(
                        int(value.get("limit", current.limit)),
                        float(value.get("window", current.window)),
                    ),
                )
            else:
                raise ValueError(f"unknown rate limit {key!r}; known: {sorted(known)}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled}
        for name, lim in self.limits().items():
            out[name] = {"limit": lim.limit, "window": lim.window}
        return out


@dataclass
class Verdict:
    """The outcome of counting one request against one limit."""

    name: str
    allowed: bool
    limit: int
    window: float
    remaining: int
    reset_in: float

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, never 0 (a 0 would invite a hot retry loop)."""
        return max(1, math.ceil(self.reset_in))

    @property
    def reset_at(self) -> int:
        return math.ceil(now() + self.reset_in)


class RateWindows:
    """Per (limit name, key) logs of the times of allowed requests."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str], deque[float]] = {}

    def check(self, name: str, key: str, limit: Limit, at: float | None = None) -> Verdict:
        """The verdict for one more request, without counting it."""
        at = now() if at is None else at
        log = self._logs.setdefault((name, key), deque())
        while log and log[0] <= at - limit.window:
            log.popleft()
        if len(log) >= limit.limit:
            reset_in = log[0] + limit.window - at
            return Verdict(name, False, limit.limit, limit.window, 0, reset_in)
        reset_in = (log[0] if log else at) + limit.window - at
        return Verdict(name, True, limit.limit, limit.window, limit.limit - len(log) - 1, reset_in)

    def hit(self, name: str, key: str, limit: Limit, at: float | None = None) -> Verdict:
        """Count one request if the limit allows it; the verdict says whether it did."""
        at = now() if at is None else at
        verdict = self.check(name, key, limit, at)
        if verdict.allowed:
            self._logs[(name, key)].append(at)
        return verdict

    def hit_all(self, hits: list[tuple[str, str, Limit]]) -> Verdict | None:
        """Count one request against several (name, key) buckets at once: all or none.

        Returns the first refusal, else the allowed verdict with the fewest requests left
        (None when there is nothing to count)."""
        at = now()
        verdicts = [self.check(name, key, limit, at) for name, key, limit in hits]
        refused = [v for v in verdicts if not v.allowed]
        if refused:
            return refused[0]
        for name, key, _ in hits:
            self._logs[(name, key)].append(at)
        return min(verdicts, key=lambda v: v.remaining, default=None)

    def clear(self) -> None:
        self._logs.clear()
