"""The ListenBrainz fake: wiring of state, routes, X-RateLimit headers and test helpers."""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.fake import Surface
from scrobble_sandbox.core.ratelimit import Limit, RateLimitConfig, Verdict
from scrobble_sandbox.core.service import ServiceFake
from scrobble_sandbox.credentials import SANDBOX_USER
from scrobble_sandbox.listenbrainz.api import ListenBrainzApi, lb_error
from scrobble_sandbox.listenbrainz.state import Listen, ListenBrainzState


@dataclass
class ListenBrainzRateLimits(RateLimitConfig):
    """The server's defaults (brainzutils ratelimit): per token and per IP, 10 s window."""

    per_token: Limit = field(default_factory=lambda: Limit(50, 10.0))
    per_ip: Limit = field(default_factory=lambda: Limit(30, 10.0))


class ListenBrainzFake(ServiceFake[ListenBrainzState, ListenBrainzRateLimits]):
    name = "listenbrainz"
    prefixes: ClassVar[dict[str, str]] = {"api": "/listenbrainz"}
    # LISTENBRAINZ_API_URL ends in /1, as https://api.listenbrainz.org/1 does.
    base_paths: ClassVar[dict[str, str]] = {"api": "/listenbrainz/1"}
    state_type = ListenBrainzState
    limits_type = ListenBrainzRateLimits

    def __init__(self) -> None:
        super().__init__()
        self.api = ListenBrainzApi(self)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.api.add_routes(router, self.prefixes["api"])

    async def rate_limit_keys(
        self, request: web.Request, surface: Surface
    ) -> list[tuple[str, str]]:
        header = request.headers.get("Authorization")
        if header:
            return [("per_token", header)]
        return [("per_ip", request.remote or "unknown")]

    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        return lb_error(
            429,
            "You have exceeded your rate limit. See the X-RateLimit-* response headers for "
            "more information on your current rate limit.",
        )

    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        return lb_error(status, "The server is temporarily unavailable. Please try again later.")

    def decorate(self, response: web.StreamResponse, verdict: Verdict | None) -> None:
        """X-RateLimit-* on every answer, as the real server sends them."""
        if verdict is None:
            lim = self.rate_limits.limits().get("per_token", Limit(50, 10.0))
            limit, remaining, reset_in = lim.limit, lim.limit, lim.window
        else:
            limit, remaining, reset_in = verdict.limit, verdict.remaining, verdict.reset_in
        response.headers["X-RateLimit-Limit"] = str(limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset-In"] = str(max(0, round(reset_in)))
        response.headers["X-RateLimit-Reset"] = str(int(reset_in + now()))
        if verdict is not None and not verdict.allowed:
            response.headers.setdefault("Retry-After", str(verdict.retry_after))

    def seed(self, kind: str, items: list[dict[str, Any]], user: str | None = None) -> int:
        owner = user or SANDBOX_USER
        if kind == "listens":
            self.state.users.add(owner)
            stored = 0
            for item in items:
                stored += self.state.add_listen(
                    Listen(owner, int(item["listened_at"]), dict(item["track_metadata"]), "import")
                )
            return stored
        if kind == "users":
            for entry in items:
                self.state.users.add(entry["name"])
                if entry.get("token"):
                    self.state.tokens.add(entry["token"], entry["name"])
            return len(items)
        raise ValueError(f"listenbrainz seeds listens or users, not {kind!r}")
