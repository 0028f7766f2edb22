"""What the Trakt and Simkl scrobble APIs share: the guard-then-body preamble of a write, the
item lookup that honours seeded unknown ids, the duplicate-scrobble 409 and the scrobble log.

Simkl copied Trakt's scrobble API, so these parts answer alike; what differs (the auth checks,
error bodies, what a stop below 80% or a watch records) stays in each service's module.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from scrobble_sandbox.core.clock import iso_utc, parse_iso
from scrobble_sandbox.core.fake import USER_KEY
from scrobble_sandbox.core.http import bearer_token, json_response, read_json
from scrobble_sandbox.core.items import Catalog, id_keys
from scrobble_sandbox.core.ledger import ScrobbleLedger
from scrobble_sandbox.core.service import ServicePart
from scrobble_sandbox.core.tokens import TokenStore

ScrobbleStateT = TypeVar("ScrobbleStateT", bound=ScrobbleLedger)


def seed_shared_kind(
    state: ScrobbleLedger,
    catalog: Catalog,
    tokens: TokenStore,
    kind: str,
    items: list[dict[str, Any]],
) -> int | None:
    """The seed kinds Trakt and Simkl take alike: ``unknown_ids``, ``catalog`` items and
    ``users`` ({token, name}); how many were stored, or None for another kind."""
    if kind == "unknown_ids":
        return state.add_unknown_ids(items)
    if kind == "catalog":
        for item in items:
            catalog.add_json(item)
        return len(items)
    if kind == "users":
        for entry in items:
            tokens.add(entry["token"], entry["name"])
        return len(items)
    return None


def objects(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The list of objects under `key` (none when absent); ValueError when it is not one."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{key} must be a list of objects")
    return value


def watched_at(obj: dict[str, Any], default: float, *, released: bool = False) -> float:
    """An item's `watched_at` (ISO 8601), else `default`; ValueError when malformed.
    Trakt also takes `released` (its release date), which the fake reads as `default`."""
    raw = obj.get("watched_at")
    if raw is None or (released and raw == "released"):
        return default
    if not isinstance(raw, str):
        raise ValueError("watched_at must be an ISO 8601 string")
    return parse_iso(raw)


class ScrobbleApi(ServicePart[ScrobbleStateT], ABC):
    """Base of the Trakt and Simkl API handlers."""

    # The 400 messages for a body that is not JSON, and for JSON that is not an object.
    unparsable_body_text: ClassVar[str]
    non_object_body_text: ClassVar[str]

    @abstractmethod
    def app_refusal(self, request: web.Request) -> web.Response | None:
        """The service's refusal of a call without the app's credentials (or the headers
        every call must carry); None when they are all right."""

    @abstractmethod
    def token_refusal(self) -> web.Response:
        """The service's 401 for a missing, unknown, expired or revoked token."""

    @abstractmethod
    def tokens(self) -> TokenStore:
        """The access tokens the service takes."""

    def signed_in(self, request: web.Request) -> str | None:
        """The user of the request's bearer token, noted for its record; None if none."""
        user = self.tokens().user_for(bearer_token(request))
        if user is not None:
            request[USER_KEY] = user
        return user

    def guard(self, request: web.Request) -> str | web.Response:
        """The authenticated user, or the service's refusal."""
        bad = self.app_refusal(request)
        if bad is not None:
            return bad
        user = self.signed_in(request)
        return self.token_refusal() if user is None else user

    def reader(self, request: web.Request) -> web.Response | None:
        """Reads that take OAuth optionally: the app's credentials as always, and a token
        only when one is sent (then it must be live)."""
        bad = self.app_refusal(request)
        if bad is not None:
            return bad
        if "Authorization" in request.headers and self.signed_in(request) is None:
            return self.token_refusal()
        return None

    @abstractmethod
    def bad_request(self, message: str) -> web.Response:
        """The service's 400 error body."""

    @abstractmethod
    async def scrobble(self, request: web.Request, action: str) -> web.Response:
        """POST /scrobble/{start,pause,stop}."""

    @abstractmethod
    async def add_ratings(self, request: web.Request) -> web.Response:
        """POST /sync/ratings."""

    @abstractmethod
    def store_history(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """Record a /sync/history body; the answer's added and not_found counts.
        Raises ValueError for a malformed body."""

    async def body(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The JSON object body, or the service's 400."""
        try:
            body = await read_json(request)
        except ValueError:
            return self.bad_request(self.unparsable_body_text)
        if not isinstance(body, dict):
            return self.bad_request(self.non_object_body_text)
        return body

    async def user_and_body(
        self, request: web.Request
    ) -> tuple[str, dict[str, Any]] | web.Response:
        """Guard first, then read the body: a bad token wins over a bad body."""
        user = self.guard(request)
        if isinstance(user, web.Response):
            return user
        body = await self.body(request)
        if isinstance(body, web.Response):
            return body
        return user, body

    async def add_history(self, request: web.Request) -> web.Response:
        got = await self.user_and_body(request)
        if isinstance(got, web.Response):
            return got
        user, body = got
        try:
            result = self.store_history(user, body)
        except ValueError as exc:
            return self.bad_request(str(exc))
        return json_response(result, status=201)

    def add_write_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        """The writes both services take at the same paths: scrobble, history, ratings."""
        for action in ("start", "pause", "stop"):
            router.add_post(f"{prefix}/scrobble/{action}", self._scrobble_route(action))
        router.add_post(f"{prefix}/sync/history", self.add_history)
        router.add_post(f"{prefix}/sync/ratings", self.add_ratings)

    def _scrobble_route(self, action: str) -> Callable[[web.Request], Any]:
        async def route(request: web.Request) -> web.Response:
            return await self.scrobble(request, action)

        return route

    def unknown(self, *objs: Any) -> bool:
        """True when an object names an id a test seeded as unknown to the service."""
        return any(k in self.state.unknown_ids for obj in objs for k in id_keys(obj))

    def media_key(self, namespace: str, obj: Any) -> str | None:
        """The registry key of a movie, show, season or anime; None when not found."""
        if self.unknown(obj):
            return None
        return self.state.items.media(namespace, obj)

    def duplicate(self, user: str, key: str, at: float) -> web.Response | None:
        """The 409 for a finished scrobble repeated inside the duplicate window."""
        recent = self.state.recent.get((user, key))
        if recent is None or recent[1] <= at:
            return None
        return json_response(
            {"watched_at": iso_utc(recent[0]), "expires_at": iso_utc(recent[1])}, status=409
        )

    def finish(self, user: str, key: str, at: float) -> None:
        """A scrobble finished: open its duplicate window, drop its paused playback."""
        self.state.recent[(user, key)] = (at, at + self.state.duplicate_window)
        self.state.playback.pop((user, key), None)

    def log_scrobble(
        self, user: str, requested: str, action: str, progress: float, key: str, at: float
    ) -> None:
        self.state.scrobbles.append(
            {
                "user": user,
                "requested": requested,
                "action": action,
                "progress": progress,
                "item": key,
                "at": at,
            }
        )
