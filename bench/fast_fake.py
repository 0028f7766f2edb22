"""A fast ListenBrainz stand-in for bench/dispatch.py (b): answers every submit-listens
with ``{"status": "ok"}`` at once and remembers only when each call arrived and its body,
so the figure measures the caller, not the fake's checks (the sandbox's faithful fake
serves under 200 calls/s on this machine, below the dispatcher and a bare loop alike).

    python -m bench.fast_fake PORT    (prints "ready" when it listens)

``GET /_stats`` answers {"arrivals": [...epoch seconds], "bodies": [...]} and
``DELETE /_stats`` forgets them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from aiohttp import web

from bench.serving import serve_until_killed


def build() -> web.Application:
    arrivals: list[float] = []
    bodies: list[Any] = []

    async def submit(request: web.Request) -> web.Response:
        arrivals.append(time.time())
        bodies.append(await request.json())
        return web.json_response({"status": "ok"})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals, "bodies": bodies})

    async def forget(_: web.Request) -> web.Response:
        arrivals.clear()
        bodies.clear()
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/1/submit-listens", submit)
    app.router.add_get("/_stats", stats)
    app.router.add_delete("/_stats", forget)
    return app


if __name__ == "__main__":
    asyncio.run(serve_until_killed(build(), int(sys.argv[1])))
