"""``/healthz`` (the process answers), ``/readyz`` (Postgres and Kafka answer) and
``/metrics`` on the gateway's own HTTP port, shaped like the other services' (health.py in
scrobble_shared)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from scrobble_gateway.keys import POOL, PRODUCER
from scrobble_shared.health import CHECK_TIMEOUT_S

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _postgres(app: web.Application) -> bool:
    return bool(await app[POOL].fetchval("SELECT true"))


async def _kafka(app: web.Application) -> bool:
    return bool(await app[PRODUCER].client.force_metadata_update())


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    results: dict[str, str] = {}
    for name, check in (("postgres", _postgres), ("kafka", _kafka)):
        try:
            ok = await asyncio.wait_for(check(request.app), CHECK_TIMEOUT_S)
        except Exception as exc:  # any failure means "not ready"; the probe says which
            log.debug("readiness check %s failed: %s", name, type(exc).__name__)
            ok = False
        results[name] = "ok" if ok else "unavailable"
    ready = all(v == "ok" for v in results.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": results},
        status=200 if ready else 503,
    )


@routes.get("/metrics")
async def metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
