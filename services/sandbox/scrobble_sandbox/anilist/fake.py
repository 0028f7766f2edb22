"""The AniList fake: wiring of state, GraphQL endpoint, OAuth, limits and test helpers."""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox import credentials
from scrobble_sandbox.anilist.api import AniListApi, errors_response
from scrobble_sandbox.anilist.oauth import AniListOAuth
from scrobble_sandbox.anilist.state import STATUSES, AniListState, Media
from scrobble_sandbox.core.fake import Action, Surface
from scrobble_sandbox.core.http import bearer_token
from scrobble_sandbox.core.ratelimit import Limit, RateLimitConfig, Verdict
from scrobble_sandbox.core.service import ServiceFake
from scrobble_sandbox.credentials import SANDBOX_USER


@dataclass
class AniListRateLimits(RateLimitConfig):
    """Documented 90 per minute (30 in practice when degraded: set `limit` to 30 to test)."""

    per_minute: Limit = field(default_factory=lambda: Limit(90, 60.0))


class AniListFake(ServiceFake[AniListState, AniListRateLimits]):
    name = "anilist"
    # Paths under the sandbox's address, each shaped like the real URL (the comment).
    prefixes: ClassVar[dict[str, str]] = {
        "api": "/anilist-graphql",  # https://graphql.anilist.co
        "auth": "/anilist-www/api/v2/oauth",  # https://anilist.co/api/v2/oauth
    }
    env_values: ClassVar[dict[str, str]] = credentials.app_env(
        "ANILIST", credentials.ANILIST_CLIENT_ID, credentials.ANILIST_CLIENT_SECRET
    )
    state_type = AniListState
    limits_type = AniListRateLimits

    def __init__(self) -> None:
        super().__init__()
        self.api = AniListApi(self)
        self.oauth = AniListOAuth(self)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.api.add_routes(router, self.prefixes["api"])
        self.oauth.add_routes(router, self.prefixes["auth"])

    async def rate_limit_keys(
        self, request: web.Request, surface: Surface
    ) -> list[tuple[str, str]]:
        if surface.name != "api":
            return []
        token = bearer_token(request)
        return [("per_minute", f"token:{token}" if token else f"ip:{request.remote}")]

    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        response = errors_response([{"message": "Too Many Requests.", "status": 429}], 429)
        response.headers["Retry-After"] = str(verdict.retry_after)
        response.headers["X-RateLimit-Reset"] = str(verdict.reset_at)
        return response

    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        return errors_response([{"message": "Internal Server Error", "status": status}], status)

    def decorate(self, response: web.StreamResponse, verdict: Verdict | None) -> None:
        if verdict is None:
            return
        response.headers["X-RateLimit-Limit"] = str(verdict.limit)
        response.headers["X-RateLimit-Remaining"] = str(verdict.remaining)

    def seed(self, kind: str, items: list[dict[str, Any]], user: str | None = None) -> int:
        """media: {"id", "idMal"?, "title", "english"?, "year"?, "episodes"?, "type"?};
        entries: {"mediaId", "status"?, "progress"?, "scoreRaw"?} for `user`; users:
        {"name", "token"?}."""
        if kind == "media":
            for item in items:
                media = Media(
                    int(item["id"]),
                    item.get("idMal"),
                    str(item.get("title", f"Media {item['id']}")),
                    item.get("episodes"),
                    str(item.get("type", "ANIME")),
                    str(item.get("format", "TV")),
                    item.get("year"),
                    item.get("english"),
                )
                self.state.catalog[media.id] = media
            return len(items)
        if kind == "entries":
            owner = self.state.user_named(user or SANDBOX_USER, create=True)
            assert owner is not None
            for item in items:
                media_id = int(item["mediaId"])
                if media_id not in self.state.catalog:
                    self.state.catalog[media_id] = Media(media_id, None, f"Media {media_id}", None)
                status = str(item.get("status", "CURRENT"))
                if status not in STATUSES:
                    raise ValueError(f"status must be one of {STATUSES}")
                entry = self.state.entry_for(owner.id, media_id) or self.state.new_entry(
                    owner.id, media_id
                )
                entry.status = status
                entry.progress = int(item.get("progress", 0))
                entry.score_raw = int(item.get("scoreRaw", 0))
            return len(items)
        if kind == "users":
            for entry_data in items:
                created = self.state.user_named(entry_data["name"], create=True)
                assert created is not None
                if entry_data.get("token"):
                    self.state.tokens.add(entry_data["token"], created.name)
                if entry_data.get("scoreFormat"):
                    created.score_format = str(entry_data["scoreFormat"])
            return len(items)
        raise ValueError(f"anilist seeds media, entries or users, not {kind!r}")

    def actions(self) -> dict[str, Action]:
        return {"expire_token": lambda b: {"ok": self.state.tokens.expire(str(b["token"]))}}
