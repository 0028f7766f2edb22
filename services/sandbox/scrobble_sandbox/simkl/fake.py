"""The Simkl fake: wiring of state, API, OAuth, limits and test helpers."""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox import credentials
from scrobble_sandbox.core.clock import now, parse_iso
from scrobble_sandbox.core.fake import Action, Surface
from scrobble_sandbox.core.http import bearer_token
from scrobble_sandbox.core.ratelimit import Limit, RateLimitConfig, Verdict
from scrobble_sandbox.core.scrobbling import seed_shared_kind
from scrobble_sandbox.core.service import ServiceFake
from scrobble_sandbox.credentials import SANDBOX_USER
from scrobble_sandbox.simkl.api import SimklApi, client_id_of, simkl_error
from scrobble_sandbox.simkl.oauth import SimklOAuth
from scrobble_sandbox.simkl.state import Kind, SimklRating, SimklState


@dataclass
class SimklRateLimits(RateLimitConfig):
    """Published: 1 POST per second and 10 GET per second, per token and per client id."""

    post: Limit = field(default_factory=lambda: Limit(1, 1.0))
    get: Limit = field(default_factory=lambda: Limit(10, 1.0))


class SimklFake(ServiceFake[SimklState, SimklRateLimits]):
    name = "simkl"
    # Paths under the sandbox's address, each shaped like the real URL (the comment).
    prefixes: ClassVar[dict[str, str]] = {
        "api": "/simkl-api",  # https://api.simkl.com
        "auth": "/simkl-www",  # https://simkl.com (then /oauth/authorize)
    }
    env_values: ClassVar[dict[str, str]] = credentials.app_env(
        "SIMKL", credentials.SIMKL_CLIENT_ID, credentials.SIMKL_CLIENT_SECRET
    )
    state_type = SimklState
    limits_type = SimklRateLimits

    def __init__(self) -> None:
        super().__init__()
        self.api = SimklApi(self)
        self.oauth = SimklOAuth(self)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.api.add_routes(router, self.prefixes["api"])
        self.oauth.add_routes(router, self.prefixes["api"], self.prefixes["auth"])

    async def rate_limit_keys(
        self, request: web.Request, surface: Surface
    ) -> list[tuple[str, str]]:
        """Every call counts against its client id AND (when it carries one) its token:
        the published limits hold per token and per client id at the same time. The OAuth
        endpoints (token exchange, PIN polls, which have their own `interval`) are not
        counted, as on Trakt, so a fresh login can POST at once."""
        if surface.name != "api" or surface.relative(request.path).startswith("/oauth/"):
            return []
        name = "get" if request.method in ("GET", "HEAD") else "post"
        buckets = [(name, f"client:{client_id_of(request) or ''}")]
        token = bearer_token(request)
        if token:
            buckets.append((name, f"token:{token}"))
        return buckets

    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        response = simkl_error(429, "rate_limit", "Too many requests, slow down")
        response.headers["Retry-After"] = str(verdict.retry_after)
        return response

    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        return simkl_error(status, "server_error", "Something went wrong")

    def seed(self, kind: str, items: list[dict[str, Any]], user: str | None = None) -> int:
        """history items: {"type": movie|show|anime, "<type>": {...}, "watched_at"?,
        "episode"?: {"season", "number"}}; ratings: {"type", "<type>", "rating"}."""
        owner = user or SANDBOX_USER
        if kind == "history":
            for item in items:
                typed, obj, key, when = self._seeded(item, "watched_at")
                episode = item.get("episode")
                season = episode.get("season", 1) if episode else None
                number = episode.get("number") if episode else None
                self.state.add_watch(owner, typed, key, obj, when, season, number)
            return len(items)
        if kind == "ratings":
            for item in items:
                typed, obj, key, rated = self._seeded(item, "rated_at")
                self.state.ratings[(owner, f"{typed}:{key}")] = SimklRating(
                    owner, typed, key, obj, int(item["rating"]), rated
                )
            return len(items)
        stored = seed_shared_kind(self.state, self.state.catalog, self.state.tokens, kind, items)
        if stored is not None:
            return stored
        raise ValueError(
            f"simkl seeds history, ratings, unknown_ids, catalog or users, not {kind!r}"
        )

    def _seeded(self, item: dict[str, Any], stamp: str) -> tuple[Kind, Any, str, float]:
        """A seeded item's type, object, catalogue key and moment (its ``stamp`` field, else
        now)."""
        typed = _kind(item.get("type", "movie"))
        obj = item[typed]
        key = self.api.media_key(typed, obj) or str(obj)
        return typed, obj, key, parse_iso(item[stamp]) if stamp in item else now()

    def approve_pin(self, user_code: str, user: str = SANDBOX_USER) -> bool:
        grant = self.state.pins.get(user_code.upper())
        if grant is None:
            return False
        grant.approve(user)
        return True

    def actions(self) -> dict[str, Action]:
        return {
            "approve_pin": lambda b: {
                "ok": self.approve_pin(str(b["user_code"]), str(b.get("user", SANDBOX_USER)))
            },
            "revoke_token": lambda b: {"ok": self.state.tokens.revoke(str(b["token"]))},
        }


def _kind(value: str) -> Kind:
    if value == "movie":
        return "movie"
    if value == "show":
        return "show"
    if value == "anime":
        return "anime"
    raise ValueError("type is movie, show or anime")
