"""The Trakt fake: wiring of state, API routes, OAuth routes, limits and test helpers."""

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox import credentials
from scrobble_sandbox.core.clock import iso_utc, now, parse_iso
from scrobble_sandbox.core.fake import Action, Surface
from scrobble_sandbox.core.http import bearer_token, json_response
from scrobble_sandbox.core.ratelimit import Limit, RateLimitConfig, Verdict
from scrobble_sandbox.core.scrobbling import seed_shared_kind
from scrobble_sandbox.core.service import ServiceFake
from scrobble_sandbox.credentials import SANDBOX_USER
from scrobble_sandbox.trakt.api import TraktApi
from scrobble_sandbox.trakt.oauth import TraktOAuth
from scrobble_sandbox.trakt.state import Rating, TraktState


@dataclass
class TraktRateLimits(RateLimitConfig):
    """Published: writes 1 per second per user, GET 500 per 5 minutes per user."""

    write: Limit = field(default_factory=lambda: Limit(1, 1.0))
    get: Limit = field(default_factory=lambda: Limit(500, 300.0))


class TraktFake(ServiceFake[TraktState, TraktRateLimits]):
    name = "trakt"
    # Paths under the sandbox's address, each shaped like the real URL (the comment).
    prefixes: ClassVar[dict[str, str]] = {
        "api": "/trakt-api",  # https://api.trakt.tv
        "auth": "/trakt-auth",  # https://auth.trakt.tv (then /oauth/...)
    }
    env_values: ClassVar[dict[str, str]] = credentials.app_env(
        "TRAKT", credentials.TRAKT_CLIENT_ID, credentials.TRAKT_CLIENT_SECRET
    )
    state_type = TraktState
    limits_type = TraktRateLimits

    def __init__(self) -> None:
        super().__init__()
        self.api = TraktApi(self)
        self.oauth = TraktOAuth(self)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.api.add_routes(router, self.prefixes["api"])
        self.oauth.add_routes(router, self.prefixes["auth"], pages=True)
        self.oauth.add_routes(router, self.prefixes["api"], pages=False)

    # --- limits ----------------------------------------------------------------------------
    async def rate_limit_keys(
        self, request: web.Request, surface: Surface
    ) -> list[tuple[str, str]]:
        if surface.name != "api" or surface.relative(request.path).startswith("/oauth/"):
            return []
        user = self.state.access.user_for(bearer_token(request))
        key = f"user:{user}" if user else f"app:{request.headers.get('trakt-api-key', '')}"
        return [("get", key) if request.method in ("GET", "HEAD") else ("write", key)]

    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        name = "AUTHED_API_GET_LIMIT" if verdict.name == "get" else "AUTHED_API_POST_LIMIT"
        info = {
            "name": name,
            "period": int(verdict.window),
            "limit": verdict.limit,
            "remaining": 0,
            "until": iso_utc(now() + verdict.reset_in),
        }
        return web.Response(
            status=429,
            text="",
            headers={"Retry-After": str(verdict.retry_after), "X-Ratelimit": json.dumps(info)},
        )

    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        return json_response({"error": "server_error", "status": status}, status=status)

    # --- seeding and helpers ---------------------------------------------------------------
    def seed(self, kind: str, items: list[dict[str, Any]], user: str | None = None) -> int:
        owner = user or SANDBOX_USER
        if kind == "history":
            for item in items:
                watched = parse_iso(item["watched_at"]) if "watched_at" in item else now()
                item_type = item.get("type", "movie")
                if item_type not in ("movie", "episode"):
                    raise ValueError("history items have type movie or episode")
                if item_type == "movie":
                    self.api.movie_key(item.get("movie"))
                else:
                    self.api.episode_key(item.get("show"), item.get("episode"))
                self.state.add_history(
                    owner,
                    item_type,
                    watched,
                    item.get("action", "watch"),
                    movie=item.get("movie"),
                    show=item.get("show"),
                    episode=item.get("episode"),
                )
            return len(items)
        if kind == "ratings":
            for item in items:
                item_type = item["type"]
                obj = item[item_type]
                rated = parse_iso(item["rated_at"]) if "rated_at" in item else now()
                show = item.get("show")
                if item_type == "episode":
                    # By show + season + number when given so, else by its own ids.
                    found = self.api.episode_key(show, obj) if show is not None else None
                    found = found or self.api.episode_key(None, obj)
                else:
                    found = self.api.media_key(item_type, obj)
                if found is None:
                    raise ValueError(f"a rated {item_type} needs ids or title + year")
                self.state.ratings[(owner, f"{item_type}:{found}")] = Rating(
                    owner, item_type, found, int(item["rating"]), rated, obj, show
                )
            return len(items)
        stored = seed_shared_kind(self.state, self.state.catalog, self.state.access, kind, items)
        if stored is not None:
            return stored
        raise ValueError(
            f"trakt seeds history, ratings, unknown_ids, catalog or users, not {kind!r}"
        )

    def seed_history(self, items: list[dict[str, Any]], user: str | None = None) -> int:
        return self.seed("history", items, user)

    def expire_token(self, token: str) -> bool:
        """Make an access token answer 401 from now on (as after 7 days)."""
        return self.state.access.expire(token)

    def approve_device(self, user_code: str, user: str = SANDBOX_USER) -> bool:
        grant = self.oauth.find_device(user_code)
        if grant is None:
            return False
        grant.approve(user)
        return True

    def set_device_status(self, user_code: str, status: str) -> bool:
        grant = self.oauth.find_device(user_code)
        if grant is None:
            return False
        if status == "expired":
            grant.expires_at = now() - 1
        elif status == "denied":
            grant.status = "denied"
        else:
            raise ValueError("status is expired or denied")
        return True

    def actions(self) -> dict[str, Action]:
        return {
            "expire_token": lambda b: {"ok": self.expire_token(str(b["token"]))},
            "approve_device": lambda b: {
                "ok": self.approve_device(str(b["user_code"]), str(b.get("user", SANDBOX_USER)))
            },
            "deny_device": lambda b: {"ok": self.set_device_status(str(b["user_code"]), "denied")},
            "expire_device": lambda b: {
                "ok": self.set_device_status(str(b["user_code"]), "expired")
            },
        }
