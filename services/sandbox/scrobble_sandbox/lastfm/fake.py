"""The Last.fm fake: wiring of state, API, web auth, limits and test helpers."""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox import credentials
from scrobble_sandbox.core.fake import Action, Surface
from scrobble_sandbox.core.ratelimit import Limit, RateLimitConfig, Verdict
from scrobble_sandbox.core.service import ServiceFake
from scrobble_sandbox.credentials import SANDBOX_USER
from scrobble_sandbox.lastfm import render
from scrobble_sandbox.lastfm.api import LastfmApi, request_params, requested_format
from scrobble_sandbox.lastfm.auth import LastfmWebAuth
from scrobble_sandbox.lastfm.render import LastfmError
from scrobble_sandbox.lastfm.state import LastfmState, Scrobble


@dataclass
class LastfmRateLimits(RateLimitConfig):
    """No published figure; 5 calls per second per API key (UNVERIFIED, see the docs)."""

    per_key: Limit = field(default_factory=lambda: Limit(5, 1.0))


class LastfmFake(ServiceFake[LastfmState, LastfmRateLimits]):
    name = "lastfm"
    prefixes: ClassVar[dict[str, str]] = {"api": "/lastfm-api", "auth": "/lastfm-www"}
    # LASTFM_API_URL and LASTFM_AUTH_URL, shaped like the real ones (the comment): every
    # API call's path is then `/`.
    base_paths: ClassVar[dict[str, str]] = {
        "api": "/lastfm-api/2.0/",  # https://ws.audioscrobbler.com/2.0/
        "auth": "/lastfm-www/api/auth/",  # https://www.last.fm/api/auth/
    }
    env_values: ClassVar[dict[str, str]] = credentials.app_env(
        "LASTFM", credentials.LASTFM_API_KEY, credentials.LASTFM_API_SECRET, api_key=True
    )
    state_type = LastfmState
    limits_type = LastfmRateLimits
    # The API and the web-auth page (another tracker speaking the protocol: its own).
    api_type: ClassVar[type[LastfmApi]] = LastfmApi
    web_auth_type: ClassVar[type[LastfmWebAuth]] = LastfmWebAuth

    def __init__(self) -> None:
        super().__init__()
        self.api = self.api_type(self)
        self.web_auth = self.web_auth_type(self)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.api.add_routes(router, self.prefixes["api"])
        self.web_auth.add_routes(router, self.prefixes["auth"])

    async def rate_limit_keys(
        self, request: web.Request, surface: Surface
    ) -> list[tuple[str, str]]:
        if surface.name != "api":
            return []
        params = await request_params(request)
        return [("per_key", params.get("api_key", ""))]

    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        # Error 29 in the body, in the format asked for; Last.fm sends no Retry-After.
        return render.failure(LastfmError(29), requested_format(request))

    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        code = {500: 8, 503: 11}.get(status, 16)
        return render.failure(LastfmError(code), requested_format(request), status=status)

    def seed(self, kind: str, items: list[dict[str, Any]], user: str | None = None) -> int:
        owner = user or SANDBOX_USER
        if kind == "scrobbles":
            self.state.users.add(owner)
            for item in items:
                self.state.scrobbles.append(
                    Scrobble(
                        user=owner,
                        artist=str(item["artist"]),
                        track=str(item["track"]),
                        timestamp=int(item["timestamp"]),
                        album=str(item.get("album", "")),
                        mbid=str(item.get("mbid", "")),
                    )
                )
            return len(items)
        if kind == "users":
            for entry in items:
                self.state.users.add(entry["name"])
                if entry.get("session_key"):
                    self.state.sessions.add(entry["session_key"], entry["name"])
            return len(items)
        if kind == "filtered_artists":
            self.state.filtered_artists.update(str(i["name"]).lower() for i in items)
            return len(items)
        raise ValueError(f"lastfm seeds scrobbles, users or filtered_artists, not {kind!r}")

    def revoke_session(self, session_key: str) -> bool:
        """Make a session key answer error 9, as after the user revokes the app."""
        return self.state.sessions.revoke(session_key)

    def actions(self) -> dict[str, Action]:
        return {"revoke_session": lambda b: {"ok": self.revoke_session(str(b["session_key"]))}}
