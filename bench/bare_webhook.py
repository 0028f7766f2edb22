"""The baseline of bench/intake.py: a bare aiohttp server on the intake's webhook route that
reads the body, parses the JSON and answers 202, nothing else (no source lookup, no
translation, no Kafka, no metrics, no access log), on the intake's event loop (uvloop) and
JSON parser (orjson), so the ratio measures the intake's own work.

    python -m bench.bare_webhook PORT    (prints "ready" when it listens)
"""

from __future__ import annotations

import sys

import orjson
import uvloop
from aiohttp import web

from bench.serving import serve_until_killed


async def webhook(request: web.Request) -> web.Response:
    orjson.loads(await request.read())
    return web.json_response({"published": 1}, status=202)


def build() -> web.Application:
    app = web.Application()
    app.router.add_post("/api/v1/intake/{kind}/{secret}", webhook)
    return app


if __name__ == "__main__":
    uvloop.run(serve_until_killed(build(), int(sys.argv[1])))
