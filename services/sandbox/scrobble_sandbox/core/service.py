"""The wiring every fake repeats: a state object it can rebuild, its published limits, and
the handler groups (API routes, OAuth) that read that state."""

from typing import Any, Generic, Protocol, TypeVar

from scrobble_sandbox.core.fake import Fake
from scrobble_sandbox.core.ratelimit import RateLimitConfig


class State(Protocol):
    """What a fake's state offers the shared wiring."""

    def snapshot(self) -> dict[str, Any]: ...


StateT = TypeVar("StateT", bound=State)
LimitsT = TypeVar("LimitsT", bound=RateLimitConfig)


class ServiceFake(Fake, Generic[StateT, LimitsT]):
    """A fake whose memory is one `state_type()` and whose limits are one `limits_type()`:
    a reset builds fresh ones of each."""

    state_type: type[StateT]
    limits_type: type[LimitsT]
    rate_limits: LimitsT

    def __init__(self) -> None:
        self.state = self.state_type()
        super().__init__()

    def default_rate_limits(self) -> LimitsT:
        return self.limits_type()

    def reset_state(self) -> None:
        self.state = self.state_type()

    def snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()


class ServicePart(Generic[StateT]):
    """One group of a fake's handlers (its API routes, its OAuth pages)."""

    def __init__(self, fake: ServiceFake[StateT, Any]) -> None:
        self.fake = fake

    @property
    def state(self) -> StateT:
        # Looked up on every use: a reset replaces the fake's state object.
        return self.fake.state
