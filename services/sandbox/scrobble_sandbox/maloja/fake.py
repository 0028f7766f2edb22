"""The Maloja fake: wiring of state, routes and test helpers. Maloja has no rate limits (a
server of one's own); an injected 429 is what a proxy in front of it would answer."""

from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox.core.fake import Action, Surface
from scrobble_sandbox.core.ratelimit import RateLimitConfig, Verdict
from scrobble_sandbox.core.service import ServiceFake
from scrobble_sandbox.maloja.api import LISTENBRAINZ, MalojaApi, lb_error, native_error
from scrobble_sandbox.maloja.state import MalojaState, Scrobble, parse_artists


@dataclass
class MalojaRateLimits(RateLimitConfig):
    """None: Maloja limits nobody."""


class MalojaFake(ServiceFake[MalojaState, MalojaRateLimits]):
    name = "maloja"
    # The server's address (each user's own; the comment gives Maloja's default).
    prefixes: ClassVar[dict[str, str]] = {"api": "/maloja"}  # http://localhost:42010
    state_type = MalojaState
    limits_type = MalojaRateLimits

    def __init__(self) -> None:
        super().__init__()
        self.api = MalojaApi(self)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.api.add_routes(router, self.prefixes["api"])

    async def rate_limit_keys(
        self, request: web.Request, surface: Surface
    ) -> list[tuple[str, str]]:
        return []

    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        return lb_error(429, "Too Many Requests")

    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        if LISTENBRAINZ in request.path:
            return lb_error(status, "Unspecified server error.")
        return native_error(status, "the sandbox was told to fail")

    def actions(self) -> dict[str, Action]:
        return {"restart": self._restart}

    def _restart(self, _: dict[str, Any]) -> dict[str, Any]:
        """What a restart does to the list bound: the oldest scrobble held now."""
        self.restart()
        return {"first_scrobble": self.state.first_scrobble}

    def restart(self) -> None:
        if self.state.scrobbles:
            self.state.first_scrobble = min(self.state.scrobbles)

    def seed(self, kind: str, items: list[dict[str, Any]], user: str | None = None) -> int:
        """``scrobbles`` ({time, artist (one string, split as Maloja does) or artists,
        title, album?, length?}: held as if from before the server started), ``keys``
        ({key, client?}), ``name`` ({name}: the server's NAME)."""
        if kind == "scrobbles":
            stored = 0
            for item in items:
                artists = item.get("artists") or parse_artists(str(item.get("artist", "")))
                at = int(item["time"])
                if at in self.state.scrobbles:
                    continue
                self.state.scrobbles[at] = Scrobble(
                    at, sorted(artists), str(item["title"]), item.get("album"), item.get("length")
                )
                self.state.first_scrobble = min(self.state.first_scrobble, at)
                stored += 1
            return stored
        if kind == "keys":
            for entry in items:
                self.state.keys.add(str(entry["key"]), str(entry.get("client", "default")))
            return len(items)
        if kind == "name":
            self.state.name = str(items[-1]["name"])
            return 1
        raise ValueError(f"maloja seeds scrobbles, keys or name, not {kind!r}")
