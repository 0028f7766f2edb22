"""Faults a test asks for: the next N matching requests fail in a chosen way.

Kinds: `rate_limit` (the fake's own 429 with Retry-After), `error` (a 5xx, or any status),
`hang` (no answer until the client gives up or the sandbox stops), `slow` (answer normally,
after a delay: what was asked is done even when the client gave up meanwhile), `drop` (do
what was asked, then break the answer off: the status line, the headers and half the body,
and the connection closes).
"""

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

FaultKind = Literal["rate_limit", "error", "hang", "slow", "drop"]


class FaultSpec(BaseModel):
    """A fault as the admin route and the Python API take it."""

    kind: FaultKind
    count: int = Field(default=1, ge=1)
    path_prefix: str = ""
    method: str | None = None
    status: int = Field(default=503, ge=400, le=599)
    retry_after: int = Field(default=1, ge=0)
    delay_ms: int = Field(default=0, ge=0)
    hang_seconds: float = Field(default=300.0, ge=0)


@dataclass
class Fault:
    """A queued fault and how many more requests it will hit."""

    kind: FaultKind
    remaining: int
    path_prefix: str
    method: str | None
    status: int
    retry_after: int
    delay_ms: int
    hang_seconds: float

    def matches(self, method: str, path: str, full_path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return path.startswith(self.path_prefix) or full_path.startswith(self.path_prefix)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultQueue:
    """The faults waiting for one fake; the oldest matching fault fires first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        path_prefix: str = "",
        method: str | None = None,
        status: int = 503,
        retry_after: int = 1,
        delay_ms: int = 0,
        hang_seconds: float = 300.0,
    ) -> Fault:
        spec = FaultSpec(
            kind=kind,
            count=count,
            path_prefix=path_prefix,
            method=method,
            status=status,
            retry_after=retry_after,
            delay_ms=delay_ms,
            hang_seconds=hang_seconds,
        )
        return self.add_spec(spec)

    def add_spec(self, spec: FaultSpec) -> Fault:
        fault = Fault(
            spec.kind,
            spec.count,
            spec.path_prefix,
            spec.method,
            spec.status,
            spec.retry_after,
            spec.delay_ms,
            spec.hang_seconds,
        )
        self._faults.append(fault)
        return fault

    def rate_limit(self, count: int = 1, *, retry_after: int = 1, path_prefix: str = "") -> Fault:
        return self.add("rate_limit", count, retry_after=retry_after, path_prefix=path_prefix)

    def error(self, status: int = 503, count: int = 1, *, path_prefix: str = "") -> Fault:
        return self.add("error", count, status=status, path_prefix=path_prefix)

    def hang(self, count: int = 1, *, path_prefix: str = "", seconds: float = 300.0) -> Fault:
        return self.add("hang", count, path_prefix=path_prefix, hang_seconds=seconds)

    def slow(self, delay_ms: int, count: int = 1, *, path_prefix: str = "") -> Fault:
        return self.add("slow", count, delay_ms=delay_ms, path_prefix=path_prefix)

    def drop(self, count: int = 1, *, path_prefix: str = "") -> Fault:
        return self.add("drop", count, path_prefix=path_prefix)

    def take(self, method: str, path: str, full_path: str) -> Fault | None:
        """Consume one use of the first fault that matches this request."""
        for fault in self._faults:
            if fault.matches(method, path, full_path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()
