"""The small HTTP server every background service runs on ``METRICS_PORT``:
``/metrics`` (Prometheus), ``/healthz`` (the process answers) and ``/readyz`` (its
dependencies answer; each check is an async callable that raises or returns False)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_S = 3.0


async def readiness(checks: Mapping[str, ReadinessCheck]) -> web.Response:
    """``/readyz``'s answer: 200 when every check answers within ``CHECK_TIMEOUT_S``, else
    503, naming each check's result."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            ok = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except Exception as exc:  # any failure means "not ready"; the probe says which
            log.debug("readiness check %s failed: %s", name, type(exc).__name__)
            ok = False
        results[name] = "ok" if ok else "unavailable"
    ready = all(v == "ok" for v in results.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": results},
        status=200 if ready else 503,
    )


def build_health_app(
    checks: Mapping[str, ReadinessCheck], registry: CollectorRegistry = REGISTRY
) -> web.Application:
    app = web.Application()
    app.router.add_routes(health_routes(checks, registry))
    return app


def health_routes(
    checks: Mapping[str, ReadinessCheck], registry: CollectorRegistry = REGISTRY
) -> web.RouteTableDef:
    """The three routes, for a service that serves them beside its own (the intake)."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        return await readiness(checks)

    routes = web.RouteTableDef()
    routes.get("/metrics")(metrics)
    routes.get("/healthz")(healthz)
    routes.get("/readyz")(readyz)
    return routes


async def start_health_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
