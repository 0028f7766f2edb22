"""``/healthz`` (the process answers), ``/readyz`` (Postgres and Kafka answer) and
``/metrics`` on the gateway's own HTTP port, shaped like the other services' (health.py in
scrobble_shared)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from scrobble_gateway.keys import POOL, PRODUCER
from scrobble_shared.health import readiness

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
    app = request.app
    return await readiness({"postgres": lambda: _postgres(app), "kafka": lambda: _kafka(app)})


@routes.get("/metrics")
async def metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
