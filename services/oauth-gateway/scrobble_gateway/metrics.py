"""The gateway's Prometheus metrics, served on its own HTTP port at ``/metrics``.

Labels are the route's path template, never a raw path: ids would make a series per user.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from prometheus_client import Counter, Histogram

from scrobble_gateway.routing import metrics_route

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUESTS: Final = Counter(
    "scrobble_gateway_requests",
    "HTTP requests answered by the gateway, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_DURATION: Final = Histogram(
    "scrobble_gateway_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: sees the final status, including errors the problem middleware mapped."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route, method = metrics_route(request), request.method
        REQUESTS.labels(route, method, str(status)).inc()
        REQUEST_DURATION.labels(route, method).observe(time.perf_counter() - started)
