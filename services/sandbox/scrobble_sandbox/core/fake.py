"""The base of every fake and the middleware that wraps each of its requests.

The middleware does, in order: record the request, fire a queued fault, count the request
against the fake's rate limits, run the handler, let the fake add its headers, record the
answer's status. Each fake owns one or more *surfaces* (URL prefixes: an API host, an auth
host), so one aiohttp app on one port can stand in for several real hosts.
"""

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.faults import Fault, FaultQueue
from scrobble_sandbox.core.ratelimit import RateLimitConfig, RateWindows, Verdict
from scrobble_sandbox.core.recording import (
    RecordedRequest,
    RequestLog,
    parse_body,
    redact_headers,
    redact_value,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Action = Callable[[dict[str, Any]], dict[str, Any]]

# Request storage: the user a handler authenticated (for the record), the raw body.
USER_KEY = web.RequestKey("sandbox_user", str)
RAW_BODY_KEY = web.RequestKey("sandbox_raw_body", bytes)


@dataclass(frozen=True)
class Surface:
    """One URL prefix of a fake, standing in for one real host (or host + path).

    `prefix` is where the fake's routes live on the sandbox server; `base` is the path of the
    documented base URL (e.g. `/listenbrainz/1` for LISTENBRAINZ_API_URL), which recorded
    paths, inspection and faults are relative to. Paths outside `base` fall back to `prefix`.
    """

    fake: "Fake"
    name: str
    prefix: str
    base: str = ""

    def relative(self, path: str) -> str:
        base = (self.base or self.prefix).rstrip("/")
        if path == base or path.startswith(base + "/"):
            return path[len(base) :] or "/"
        return path[len(self.prefix) :] or "/"


class Fake(ABC):
    """State, log, faults and limits of one fake service, plus its routes."""

    name: str
    # Surface name -> URL prefix on the sandbox server.
    prefixes: ClassVar[dict[str, str]] = {}
    # Surface name -> path of the documented base URL, where it lies below the prefix.
    base_paths: ClassVar[dict[str, str]] = {}
    # The app credentials a client sets to talk to this fake (``env_urls`` gives the URLs).
    env_values: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        self.log = RequestLog()
        self.faults = FaultQueue()
        self.windows = RateWindows()
        self.auto_approve = False
        self.rate_limits: RateLimitConfig = self.default_rate_limits()
        self.base_urls: dict[str, str] = {}
        self.closing = asyncio.Event()

    @classmethod
    def env_urls(cls) -> dict[str, str]:
        """What a client sets to talk to this fake: ``<NAME>_<SURFACE>_URL``, the path of
        each surface's base under the sandbox's address, shaped like the real URL."""
        bases = cls.prefixes | cls.base_paths
        return {
            f"{cls.name.upper()}_{surface.upper()}_URL": path for surface, path in bases.items()
        }

    # --- what each fake provides -------------------------------------------------------
    def surfaces(self) -> dict[str, str]:
        """Surface name -> URL prefix on the sandbox server (``prefixes``)."""
        return dict(self.prefixes)

    def bases(self) -> dict[str, str]:
        """Surface name -> path of the documented base URL (``base_paths``, else the prefix)."""
        return self.surfaces() | self.base_paths

    @abstractmethod
    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the fake's routes (full paths, prefixes included)."""

    @abstractmethod
    def default_rate_limits(self) -> RateLimitConfig:
        """The published limits, as a fresh config object."""

    @abstractmethod
    def reset_state(self) -> None:
        """Forget every item, token and user, then recreate the defaults."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """What the fake holds, JSON-shaped, for tests to assert on."""

    @abstractmethod
    def seed(self, kind: str, items: list[dict[str, Any]], user: str | None = None) -> int:
        """Preload items of a kind; returns how many were stored."""

    @abstractmethod
    async def rate_limit_keys(
        self, request: web.Request, surface: Surface
    ) -> list[tuple[str, str]]:
        """(limit name, key) buckets to count this request against (all of them, or none
        when one is exhausted); an empty list when it is not limited."""

    @abstractmethod
    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        """The real service's 429 (or its equivalent) for an exhausted limit."""

    @abstractmethod
    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        """The real service's answer for an injected 5xx (or other) status."""

    def decorate(self, response: web.StreamResponse, verdict: Verdict | None) -> None:
        """Add headers the real service puts on every answer (default: none)."""
        return None

    def actions(self) -> dict[str, Action]:
        """Named test helpers reachable over the admin route (e.g. expire a token)."""
        return {}

    # --- shared behaviour ---------------------------------------------------------------
    def reset(self) -> None:
        self.log.clear()
        self.faults.clear()
        self.windows.clear()
        self.auto_approve = False
        self.rate_limits = self.default_rate_limits()
        self.reset_state()

    def requests(self, path_prefix: str = "", method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally only those under a path (relative to the base URL)."""
        return self.log.matching(path_prefix, method)

    def url(self, surface: str = "api") -> str:
        return self.base_urls[surface]

    async def handle(
        self, request: web.Request, surface: Surface, handler: Handler
    ) -> web.StreamResponse:
        """Run one request through record -> fault -> rate limit -> handler -> record."""
        raw = await request.read()
        path = surface.relative(request.path)
        record = RecordedRequest(
            fake=self.name,
            surface=surface.name,
            method=request.method,
            path=path,
            full_path=request.path,
            query=redact_value(dict(request.query)),
            headers=redact_headers(request),
            body=redact_value(parse_body(raw, request.content_type)),
            at=now(),
        )
        self.log.append(record)
        request[RAW_BODY_KEY] = raw
        try:
            fault = self.faults.take(request.method, path, request.path)
            if fault is not None:
                record.fault = fault.kind
                early = await self._apply_fault(request, fault)
                if early is not None:
                    record.status = early.status
                    return early
            verdict: Verdict | None = None
            if self.rate_limits.enabled:
                limits = self.rate_limits.limits()
                buckets = await self.rate_limit_keys(request, surface)
                verdict = self.windows.hit_all([(n, k, limits[n]) for n, k in buckets])
                if verdict is not None and not verdict.allowed:
                    response = self.rate_limited_response(request, verdict)
                    self.decorate(response, verdict)
                    record.status = response.status
                    record.extra["rate_limited"] = verdict.name
                    return response
            response = await handler(request)
            self.decorate(response, verdict)
            record.status = response.status
            if fault is not None and fault.kind == "drop":
                break_off(request, response)
            return response
        except web.HTTPException as exc:
            record.status = exc.status
            raise
        finally:
            record.user = request.get(USER_KEY)

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "drop":
            return None  # the request is served, its answer broken off (break_off)
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_ms / 1000)
            return None
        if fault.kind == "hang":
            # Wait for the client to give up (aiohttp then cancels us) or the sandbox to stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), timeout=fault.hang_seconds)
            return self.server_error_response(request, 504)
        if fault.kind == "rate_limit":
            verdict = Verdict("fault", False, 0, float(fault.retry_after), 0, fault.retry_after)
            response = self.rate_limited_response(request, verdict)
            response.headers["Retry-After"] = str(fault.retry_after)
            self.decorate(response, verdict)
            return response
        return self.server_error_response(request, fault.status)


def break_off(request: web.Request, response: web.StreamResponse) -> None:
    """Send the start of ``response`` (status line, headers, half the body) and close the
    connection: the client learns that it was heard, never what came of it. aiohttp's own
    attempt to send the response afterwards finds the connection closing and gives up."""
    body = response.body if isinstance(response, web.Response) else b""
    data = body if isinstance(body, bytes) else b""
    head = (
        f"HTTP/1.1 {response.status} {response.reason}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    transport = request.transport
    if transport is not None:
        transport.write(head + data[: len(data) // 2])
        transport.close()
