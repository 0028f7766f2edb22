"""A TCP proxy on loopback that can cut, delay, stall and partition: the harness's network
faults. Every process of the system reaches Kafka, Postgres and the sandbox through it.

    python -m bench.chaos.proxy --control PORT --route NAME:LISTEN:TARGET [--route ...]

prints ``ready`` once every route listens. Control (HTTP, loopback): ``GET /routes``;
``PUT /routes/{name}`` with ``{"delay_ms": 300, "loss": 0.05, "partitioned": false}`` (any
subset; ``{}`` heals everything); ``POST /routes/{name}/cut`` resets every open connection.

What each fault does to the bytes, per connection and direction:

- delay: each chunk is forwarded ``delay_ms`` after it was read, in order (latency, not a
  bandwidth cap: chunks in flight overlap);
- loss: a TCP proxy cannot drop a packet (the kernel below resends it), so loss is what it
  looks like to the application: with probability ``loss`` a chunk waits a retransmission
  timeout, 200 ms doubled for each consecutive loss up to 3.2 s;
- partitioned: nothing is forwarded either way and new connections are accepted but not
  connected onwards until the partition heals; bytes read meanwhile wait (the sender's
  window fills, as across a real partition) and flow once it heals, unless an end gave up;
- cut: every open connection is reset (RST, SO_LINGER 0); new ones go through.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Final

import uvloop
from aiohttp import web

CHUNK: Final = 65_536
RTO_S: Final = 0.2
MAX_RTO_S: Final = 3.2


@dataclass
class Faults:
    delay_ms: float = 0.0
    loss: float = 0.0
    partitioned: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"delay_ms": self.delay_ms, "loss": self.loss, "partitioned": self.partitioned}


def stall_s(loss: float, consecutive: int, draw: float) -> float:
    """The wait a lost chunk adds (0 when ``draw`` says it got through): a retransmission
    timeout that doubles with each consecutive loss."""
    if loss <= 0 or draw >= loss:
        return 0.0
    return float(min(RTO_S * (2**consecutive), MAX_RTO_S))


@dataclass
class Route:
    """One listening port forwarded to one target port, and its open connections."""

    name: str
    listen_port: int
    target_port: int
    faults: Faults = field(default_factory=Faults)
    healed: asyncio.Event = field(default_factory=asyncio.Event)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    accepted: int = 0
    cuts: int = 0

    def __post_init__(self) -> None:
        self.healed.set()

    def apply(self, faults: Faults) -> None:
        self.faults = faults
        if faults.partitioned:
            self.healed.clear()
        else:
            self.healed.set()

    def cut(self) -> int:
        """Reset every open connection; returns how many sockets were reset."""
        count = 0
        for writer in list(self.writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            count += 1
        self.writers.clear()
        self.cuts += 1
        return count

    def to_json(self) -> dict[str, Any]:
        return {
            "listen": self.listen_port,
            "target": self.target_port,
            "open": len(self.writers) // 2,
            "accepted": self.accepted,
            "cuts": self.cuts,
            **self.faults.to_json(),
        }

    async def serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.add(client_w)
        try:
            await self.healed.wait()
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                return
            self.writers.add(up_w)
            try:
                await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))
            finally:
                self.writers.discard(up_w)
                up_w.transport.abort()
        finally:
            self.writers.discard(client_w)
            client_w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read chunks and forward each when its delay (and any stall) has passed, in order;
        the reading side stops reading while partitioned, as a full window would."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        forward = asyncio.create_task(self._forward(queue, writer))
        try:
            while True:
                await self.healed.wait()
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                queue.put_nowait((time.monotonic(), data))
                if not data:
                    break
            await forward
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward

    async def _forward(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        consecutive = 0
        while True:
            read_at, data = await queue.get()
            if not data:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            wait = read_at + self.faults.delay_ms / 1000 - time.monotonic()
            stall = stall_s(self.faults.loss, consecutive, random.random())
            consecutive = consecutive + 1 if stall else 0
            if wait + stall > 0:
                await asyncio.sleep(wait + stall)
            await self.healed.wait()
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return


def control_app(routes: dict[str, Route]) -> web.Application:
    async def show(_: web.Request) -> web.Response:
        return web.json_response({name: r.to_json() for name, r in routes.items()})

    async def configure(request: web.Request) -> web.Response:
        route = routes.get(request.match_info["name"])
        if route is None:
            raise web.HTTPNotFound()
        body = await request.json()
        route.apply(
            Faults(
                delay_ms=float(body.get("delay_ms", 0)),
                loss=float(body.get("loss", 0)),
                partitioned=bool(body.get("partitioned", False)),
            )
        )
        return web.json_response(route.to_json())

    async def cut(request: web.Request) -> web.Response:
        route = routes.get(request.match_info["name"])
        if route is None:
            raise web.HTTPNotFound()
        return web.json_response({"reset": route.cut()})

    app = web.Application()
    app.router.add_get("/routes", show)
    app.router.add_put("/routes/{name}", configure)
    app.router.add_post("/routes/{name}/cut", cut)
    return app


def parse_route(text: str) -> tuple[str, int, int]:
    name, listen, target = text.split(":")
    return name, int(listen), int(target)


async def serve(control_port: int, specs: list[tuple[str, int, int]]) -> None:
    routes = {name: Route(name, listen, target) for name, listen, target in specs}
    servers = [
        await asyncio.start_server(r.serve, "127.0.0.1", r.listen_port, reuse_address=True)
        for r in routes.values()
    ]
    runner = web.AppRunner(control_app(routes), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos.proxy")
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--route", action="append", default=[], type=parse_route)
    args = parser.parse_args(argv)
    # uvloop, as the intake: the proxy carries every byte of the system.
    uvloop.run(serve(args.control, args.route))
    return 0


if __name__ == "__main__":
    sys.exit(main())
