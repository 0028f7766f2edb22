"""The faults, each a named scenario run as trials under load.

A trial waits a random moment, injects its fault, ends it (a killed process is started
again at once, as its supervisor would; a killed broker or database is brought back after
a few seconds down; a network fault or a slow fake is lifted after its time), then sends a
canary play and measures, from the fault's end, the seconds until the canary is delivered:
the table's recovery time. Plays made during a trial are that scenario's plays.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import asyncpg

from bench.chaos.gateway_load import wait_for
from bench.chaos.stack import KILLABLE, proxy_cut, proxy_put

if TYPE_CHECKING:
    from bench.chaos.harness import Run

ROUTES: Final = ("kafka", "postgres", "fakes")
# Slow and dropped answers go to these writes in turn: history adds (which Trakt and Simkl
# do not deduplicate), Last.fm's calls, ListenBrainz's listens, Trakt's scrobbles.
FAKE_WRITES: Final = (
    ("trakt", "/sync/history"),
    ("simkl", "/sync/history"),
    ("lastfm", "/"),
    ("listenbrainz", "/submit-listens"),
    ("trakt", "/scrobble/"),
)
CLIENT_TIMEOUT_S: Final = 10.0  # the dispatcher's read timeout (transport.py)

Inject = Callable[["Run", random.Random, int], Awaitable[str]]


@dataclass(frozen=True)
class Scenario:
    name: str
    inject: Inject  # runs the fault; returns a note; the fault is over when it returns


# --- process kills ------------------------------------------------------------------------


def kill_process(name: str) -> Inject:
    async def inject(run: Run, rng: random.Random, trial: int) -> str:
        service = run.stack.services[name]
        moment = ""
        if name == "gateway" and run.browser is not None:
            # During an OAuth callback or a POST /queue, alternately.
            event = run.browser.in_flight.callback if trial % 2 else run.browser.in_flight.queue
            seen = await wait_for(event, 10 if run.options.quick else 20)
            await asyncio.sleep(rng.uniform(0, 0.05))
            moment = (" during a callback" if trial % 2 else " during POST /queue") + (
                "" if seen else " (none seen in 20 s)"
            )
        elif name == "importer":
            seen = await _import_running(run, 5 if run.options.quick else 20)
            moment = " while an import job ran" if seen else " (no import job running)"
        else:
            await asyncio.sleep(rng.uniform(0, 3))
        service.kill()
        await service.start(180)
        return f"killed {name}{moment}"

    return inject


async def _import_running(run: Run, timeout_s: float) -> bool:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        conn = await asyncpg.connect(run.stack.direct_dsn)
        try:
            running = await conn.fetchval(
                "SELECT count(*) FROM import_jobs WHERE state = 'running' AND lease_until > now()"
            )
        finally:
            await conn.close()
        if running:
            return True
        await asyncio.sleep(0.3)
    return False


# --- the broker and the database -----------------------------------------------------------


async def kill_kafka(run: Run, rng: random.Random, trial: int) -> str:
    await asyncio.sleep(rng.uniform(0, 3))
    killed = run.infra.kill_kafka()
    down = 2.0 if run.options.quick else rng.uniform(2, 8)
    await asyncio.sleep(down)
    took = await run.infra.up()
    return f"kill -9 broker {killed}, {down:.0f} s down, back in {took:.0f} s"


async def kill_postgres(run: Run, rng: random.Random, trial: int) -> str:
    await asyncio.sleep(rng.uniform(0, 3))
    killed = run.infra.kill_postgres()
    # Every other trial brings it back at once, as a supervisor would: the killed
    # postmaster may not even be reaped yet (infra.sh waits for that).
    down = 0.0 if trial % 2 == 0 else rng.uniform(1, 5)
    await asyncio.sleep(down)
    took = await run.infra.up()
    backends = len(killed) - 1
    return f"kill -9 postmaster and {backends} backends, {down:.0f} s down, back in {took:.0f} s"


# --- the network ----------------------------------------------------------------------------


async def net_cut(run: Run, rng: random.Random, trial: int) -> str:
    route = ROUTES[trial % len(ROUTES)]
    await asyncio.sleep(rng.uniform(0, 3))
    reset = await proxy_cut(run.stack, route)
    return f"cut {reset} connection(s) to {route}"


def net_degraded(what: str, seconds: float, **faults: float) -> Inject:
    async def inject(run: Run, rng: random.Random, trial: int) -> str:
        for route in ROUTES:
            await proxy_put(run.stack, route, **faults)
        try:
            await asyncio.sleep(seconds)
        finally:
            for route in ROUTES:
                await proxy_put(run.stack, route)
        return f"{what} on every route for {seconds:.0f} s"

    return inject


def net_partition(seconds: float) -> Inject:
    async def inject(run: Run, rng: random.Random, trial: int) -> str:
        route = ROUTES[trial % len(ROUTES)]
        await proxy_put(run.stack, route, partitioned=True)
        try:
            await asyncio.sleep(seconds)
        finally:
            await proxy_put(run.stack, route)
        return f"{route} partitioned away for {seconds:.0f} s"

    return inject


# --- the fakes -------------------------------------------------------------------------------


def fake_fault(kind: str) -> Inject:
    """``slow``: answers after the client gave up (what was asked still happens at the
    fake); ``drop``: does what was asked, then drops the connection mid-answer."""

    async def inject(run: Run, rng: random.Random, trial: int) -> str:
        assert run.sandbox is not None
        fake, path = FAKE_WRITES[trial % len(FAKE_WRITES)]
        hits = 2 if run.options.quick else 3
        spec: dict[str, object] = {"kind": kind, "count": hits, "path_prefix": path,
                                   "method": "POST"}  # fmt: skip
        if kind == "slow":
            spec["delay_ms"] = int((CLIENT_TIMEOUT_S + 5) * 1000)
        await run.sandbox.fault(fake, **spec)
        # Until each was hit (or a while passed), then the last one's time.
        until = time.monotonic() + (20 if run.options.quick else 60)
        while time.monotonic() < until:
            if not await run.sandbox.faults(fake):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(CLIENT_TIMEOUT_S + 6 if kind == "slow" else 1)
        await run.sandbox.clear_faults(fake)
        what = "answered after 15 s" if kind == "slow" else "dropped mid-answer"
        return f"{fake} {path}: the next {hits} writes {what}"

    return inject


def clock_skew(seconds: float) -> Inject:
    async def inject(run: Run, rng: random.Random, trial: int) -> str:
        assert run.driver is not None
        skew = timedelta(minutes=10) * (1 if trial % 2 == 0 else -1)
        run.driver.skew = skew
        try:
            await asyncio.sleep(seconds)
        finally:
            run.driver.skew = None
        ahead = "ahead" if skew > timedelta(0) else "behind"
        return f"a media server 10 minutes {ahead} for {seconds:.0f} s"

    return inject


# --- the catalogue --------------------------------------------------------------------------


def catalogue(window_s: float, partition_s: float) -> dict[str, Scenario]:
    """Every scenario by name; ``window_s`` is how long latency, loss and skew last."""
    found = {
        f"kill -9 {name}": Scenario(f"kill -9 {name}", kill_process(name)) for name in KILLABLE
    }
    found.update(
        {
            "kill -9 kafka broker": Scenario("kill -9 kafka broker", kill_kafka),
            "kill -9 postgres": Scenario("kill -9 postgres", kill_postgres),
            "net: connections cut": Scenario("net: connections cut", net_cut),
            "net: 300 ms latency": Scenario(
                "net: 300 ms latency", net_degraded("300 ms latency", window_s, delay_ms=300)
            ),
            "net: 5% packet loss": Scenario(
                "net: 5% packet loss", net_degraded("5% loss", window_s, loss=0.05)
            ),
            f"net: {partition_s:.0f} s partition": Scenario(
                f"net: {partition_s:.0f} s partition", net_partition(partition_s)
            ),
            "fake: slow past timeout": Scenario("fake: slow past timeout", fake_fault("slow")),
            "fake: drops mid-answer": Scenario("fake: drops mid-answer", fake_fault("drop")),
            "clock skew +-10 min": Scenario("clock skew +-10 min", clock_skew(window_s)),
        }
    )
    return found
