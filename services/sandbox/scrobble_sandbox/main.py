"""`scrobble sandbox`: serve the trackers' fakes until SIGTERM or SIGINT, after printing exports.

Failure policy: a port that cannot be bound raises (the CLI reports it, exit non-zero); a
signal stops the server gracefully and `run` returns 0.
"""

import asyncio
import signal
import sys

from scrobble_sandbox.env import export_lines
from scrobble_sandbox.sandbox import SandboxServer


async def serve(host: str, port: int) -> int:
    server = await SandboxServer.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # The exports are the contract with whoever started us (a shell, `scrobble up`):
        # print them all, then flush, so a reader waiting on the pipe sees them at once.
        print("\n".join(export_lines(server.sandbox.env)), flush=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()
    return 0


def run(host: str = "127.0.0.1", port: int = 0) -> int:
    """Serve the sandbox on host:port (0 picks a free port); blocks until a signal."""
    return asyncio.run(serve(host, port))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m scrobble_sandbox",
        description="Run fakes of Trakt, Last.fm, ListenBrainz, Simkl and AniList on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: pick a free one)")
    args = parser.parse_args(argv)
    try:
        return run(args.host, args.port)
    except OSError as exc:
        print(f"scrobble sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
