"""Serving a bench's stand-in app as a child process: the parent waits for "ready"."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def serve_until_killed(app: web.Application, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` without an access log (its cost is not what a
    bench measures), say "ready" on stdout once listening, and never return."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()
