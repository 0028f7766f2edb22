"""Intake webhooks/s end to end to the playback topic, against a bare aiohttp handler
measured in the same run.

    .venv/bin/python -m bench.intake [--webhooks 20000] [--concurrency 32] [--sources 8]
        [--clients 1] [--warmup 500] [--rounds 1]

Kafka and Postgres are found as the tests find them (``tests.support.infra.discover()``:
KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when set, else ``deploy/local/infra.sh up``).
It makes a private migrated database with ``--sources`` personal Jellyfin sources (one
owner each, so the records' keys spread over the topic's partitions) and a private
playback topic, and writes the webhooks once: distinct PlaybackProgress bodies of one
movie (distinct positions, so distinct event ids), spread round robin over the sources,
posted as ``Content-Type: text/plain`` like jellyfin-plugin-webhook does.

Two servers, each in its own process, the baseline measured first, and the same load
generator posting the same bodies to the same paths to both:

1. bare: ``python -m bench.bare_webhook`` (reads the body, parses the JSON, answers 202;
   on uvloop and orjson, as the intake);
2. intake: ``scrobble intake``, exactly as an operator runs it (its access log included),
   which answers 202 only once Kafka acknowledged the event.

With ``--rounds N`` the webhooks are split into N parts and the two are interleaved (bare,
intake, bare, intake ...), so a neighbour's load that comes and goes during the run
weighs on both; the figures add the rounds up.

The load generator is ``--clients`` processes of their own (an aiohttp client each, with
``--concurrency`` requests in flight in all). Each first posts its share of ``--warmup``
webhooks (sources cached, producer connected; not counted), then waits for the word and
posts its share of ``--webhooks``. Only 202 answers count; the rate is webhooks / wall
seconds from the first request to the last 202. Per server: webhooks/s, p50/p99 latency,
CPU microseconds per webhook of the server process and of the load generator
(/proc/<pid>/stat), and the machine's load (1-minute load average at the start and end,
and how many cores' worth of CPU the whole machine used during the round, /proc/stat).

After the intake's rounds the topic is read back with aiokafka: it must hold exactly one
record per webhook posted (warm-up included), each with its own event id, or the bench
fails without a RESULT line. The last line is machine readable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.machine import cpu_seconds, machine_cpu
from scrobble_shared.db.sources import create_source
from scrobble_shared.sources import webhook_path
from tests.support.databases import create_migrated_database, drop_database, unique_name
from tests.support.infra import discover
from tests.support.services import ServiceProcess, free_port
from tests.support.topics import Topics
from tests.unit.intake.test_translate_jellyfin import MOVIE, jellyfin

LOG_DIR = Path(os.environ.get("BENCH_INTAKE_LOG_DIR", ".local/logs"))
HEADERS = {"Content-Type": "text/plain"}
TICKS_PER_MS = 10_000
MOVIE_MS = int(str(MOVIE["RunTimeTicks"])) // TICKS_PER_MS
PARTITIONS = 3
STOP_TIMEOUT_S = 15.0
# A load generator's figures are one line of JSON with every latency in it.
RESULT_LINE_LIMIT = 256 * 1024 * 1024


# --- load -----------------------------------------------------------------------------------
def make_bodies(paths: Sequence[str], n: int) -> list[tuple[str, bytes]]:
    """``n`` (path, body): PlaybackProgress of one movie at positions 0, 1, 2 ... ms (each
    its own event id), round robin over the sources' paths."""
    if n > MOVIE_MS:
        raise SystemExit(f"at most {MOVIE_MS} webhooks (one per millisecond of the movie)")
    jobs = []
    for i in range(n):
        body = jellyfin(
            "PlaybackProgress",
            MOVIE,
            PlaybackPositionTicks=i * TICKS_PER_MS,
            PlaybackPosition=time.strftime("%H:%M:%S", time.gmtime(i // 1000)),
        )
        jobs.append((paths[i % len(paths)], json.dumps(body).encode()))
    return jobs


def write_jobs(path: Path, jobs: Sequence[tuple[str, bytes]]) -> None:
    with path.open("wb") as out:
        for url_path, body in jobs:
            out.write(url_path.encode() + b"\t" + body + b"\n")


def read_jobs(path: Path) -> list[tuple[str, bytes]]:
    jobs = []
    for line in path.read_bytes().splitlines():
        url_path, _, body = line.partition(b"\t")
        jobs.append((url_path.decode(), body))
    return jobs


# --- the load generator (its own process) -------------------------------------------------
async def post_all(
    session: aiohttp.ClientSession, jobs: Sequence[tuple[str, bytes]], concurrency: int
) -> dict[str, Any]:
    queue = iter(jobs)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    last_ok = 0.0

    async def worker() -> None:
        nonlocal last_ok
        for url_path, body in queue:
            sent = time.monotonic()
            try:
                async with session.post(url_path, data=body, headers=HEADERS) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                continue
            done = time.monotonic()
            statuses[status] += 1
            if status == 202:
                latencies.append(done - sent)
                last_ok = max(last_ok, done)

    first = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "first": first,
        "last_ok": last_ok,
        "ok": statuses[202],
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(errors),
        "latencies": latencies,
    }


async def client_main(base_url: str, jobs_file: Path, concurrency: int, warmup: int) -> None:
    """Warm up, say "ready", wait for a line on stdin, post, print one line of JSON."""
    jobs = read_jobs(jobs_file)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        warm = await post_all(session, jobs[:warmup], concurrency)
        print(json.dumps({"ready": True, "warm_ok": warm["ok"], "warm": len(jobs[:warmup])}))
        sys.stdout.flush()
        await loop.run_in_executor(None, sys.stdin.readline)
        result = await post_all(session, jobs[warmup:], concurrency)
    print(json.dumps(result), flush=True)


# --- processes ------------------------------------------------------------------------------
async def stop_process(proc: asyncio.subprocess.Process | None) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
    if proc is None or proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def start_bare(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare_webhook", str(port), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    except TimeoutError:
        line = b""
    if line.strip() != b"ready":
        await stop_process(proc)
        raise SystemExit("the bare webhook server did not start")
    return proc


@dataclass
class Round:
    name: str
    posted: int
    ok: int
    statuses: dict[str, int]
    errors: dict[str, int]
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float
    client_cpu_s: float
    machine_busy_cores: float
    load_before: float
    load_after: float
    warm_ok: int
    warm: int

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else float("nan")

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def show(self, cores: int) -> None:
        others = {k: v for k, v in self.statuses.items() if k != "202"}
        trouble = ""
        if others or self.errors:
            trouble = f"  NOT 202: {others} errors: {self.errors}"
        print(
            f"{self.name:7} {self.rate:9.1f} webhooks/s  ({self.ok} of {self.posted} answered "
            f"202 in {self.seconds:.2f} s; warm-up {self.warm_ok}/{self.warm}){trouble}\n"
            f"        latency p50 {self.percentile(0.5):.2f} ms, p99 {self.percentile(0.99):.2f}"
            f" ms\n"
            f"        server CPU {self.server_cpu_s / self.posted * 1e6:6.0f} us/webhook "
            f"({self.server_cpu_s / self.seconds * 100:.0f}% of one core); load generator "
            f"{self.client_cpu_s / self.posted * 1e6:.0f} us/webhook "
            f"({self.client_cpu_s / self.seconds * 100:.0f}% of one core)\n"
            f"        machine: {self.machine_busy_cores:.2f} of {cores} cores busy during the "
            f"round; load average (1 min) {self.load_before:.2f} -> {self.load_after:.2f}",
            flush=True,
        )


def merged(rounds: Sequence[Round]) -> Round:
    """Several rounds of one server as one: counts, seconds and CPU added up."""
    seconds = sum(r.seconds for r in rounds)
    return Round(
        name=rounds[0].name,
        posted=sum(r.posted for r in rounds),
        ok=sum(r.ok for r in rounds),
        statuses=dict(sum((Counter(r.statuses) for r in rounds), Counter())),
        errors=dict(sum((Counter(r.errors) for r in rounds), Counter())),
        seconds=seconds,
        latencies_ms=[x for r in rounds for x in r.latencies_ms],
        server_cpu_s=sum(r.server_cpu_s for r in rounds),
        client_cpu_s=sum(r.client_cpu_s for r in rounds),
        machine_busy_cores=sum(r.machine_busy_cores * r.seconds for r in rounds) / seconds,
        load_before=rounds[0].load_before,
        load_after=rounds[-1].load_after,
        warm_ok=sum(r.warm_ok for r in rounds),
        warm=sum(r.warm for r in rounds),
    )


async def run_round(
    name: str,
    base_url: str,
    server_pid: int,
    job_files: Sequence[Path],
    concurrency: int,
    warmups: Sequence[int],
) -> Round:
    """The load generator's processes against a running server; its figures."""
    per_client = max(1, concurrency // len(job_files))
    clients = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.intake",
            "--client",
            base_url,
            str(path),
            str(per_client),
            str(warm),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=RESULT_LINE_LIMIT,
        )
        for path, warm in zip(job_files, warmups, strict=True)
    ]
    try:
        warm_ok = warm_total = 0
        for client in clients:
            assert client.stdout is not None
            line = await asyncio.wait_for(client.stdout.readline(), timeout=300)
            if not line:
                raise SystemExit(f"{name}: a load generator exited during the warm-up")
            said = json.loads(line)
            warm_ok += said["warm_ok"]
            warm_total += said["warm"]
        load_before = os.getloadavg()[0]
        server_before = cpu_seconds(server_pid)
        clients_before = sum(cpu_seconds(c.pid) for c in clients)
        busy_before, total_before = machine_cpu()
        for client in clients:
            assert client.stdin is not None
            client.stdin.write(b"go\n")
            await client.stdin.drain()
        results = []
        for client in clients:
            assert client.stdout is not None
            line = await client.stdout.readline()
            if not line:
                raise SystemExit(f"{name}: a load generator exited without its figures")
            results.append(json.loads(line))
        busy_after, total_after = machine_cpu()
        server_cpu = cpu_seconds(server_pid) - server_before
        client_cpu = sum(cpu_seconds(c.pid) for c in clients) - clients_before
        load_after = os.getloadavg()[0]
    finally:
        for client in clients:
            await stop_process(client)
    cores = os.cpu_count() or 1
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for result in results:
        statuses.update(result["statuses"])
        errors.update(result["errors"])
    last_ok = max(r["last_ok"] for r in results)
    first = min(r["first"] for r in results)
    return Round(
        name=name,
        posted=sum(statuses.values()) + sum(errors.values()),
        ok=sum(r["ok"] for r in results),
        statuses=dict(statuses),
        errors=dict(errors),
        seconds=max(0.0, last_ok - first),
        latencies_ms=[x * 1000 for r in results for x in r["latencies"]],
        server_cpu_s=server_cpu,
        client_cpu_s=client_cpu,
        machine_busy_cores=(busy_after - busy_before) / (total_after - total_before) * cores,
        load_before=load_before,
        load_after=load_after,
        warm_ok=warm_ok,
        warm=warm_total,
    )


# --- database, topic ------------------------------------------------------------------------
async def make_sources(dsn: str, n: int) -> list[str]:
    """``n`` personal Jellyfin sources, each its own owner; their webhook paths."""
    conn = await asyncpg.connect(dsn)
    try:
        paths = []
        for i in range(n):
            _, secret = await create_source(conn, "jellyfin", f"bench {i}", uuid.uuid4())
            paths.append(webhook_path("jellyfin", secret))
    finally:
        await conn.close()
    return paths


async def read_topic(bootstrap: str, topic: str) -> tuple[int, int, Counter[str]]:
    """(records on the topic, distinct event ids among them, records per key)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records = 0
        ids: set[str] = set()
        keys: Counter[str] = Counter()
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for found in batch.values():
                for record in found:
                    records += 1
                    ids.add(json.loads(record.value)["event_id"])
                    keys[(record.key or b"").decode()] += 1
    finally:
        await consumer.stop()
    return records, len(ids), keys


# --- main -----------------------------------------------------------------------------------
def split(jobs: Sequence[tuple[str, bytes]], parts: int) -> list[list[tuple[str, bytes]]]:
    return [list(jobs[i::parts]) for i in range(parts)]


async def bench(args: argparse.Namespace) -> None:
    infra = discover()
    bootstrap, admin_dsn = infra.kafka_bootstrap, infra.database_url
    tag = unique_name("benchintake")
    topics = Topics(bootstrap)
    log_path = LOG_DIR / f"{tag}-intake.log"
    # One file per round and load generator: round 0's begin with the warm-up.
    job_files = [
        [LOG_DIR / f"{tag}-jobs-{r}-{c}.tsv" for c in range(args.clients)]
        for r in range(args.rounds)
    ]
    print(f"Kafka {bootstrap} ({infra.source}); database {tag}, topic {topics.prefix}.* ...")
    dsn = await create_migrated_database(admin_dsn, tag)
    bare: asyncio.subprocess.Process | None = None
    intake: ServiceProcess | None = None
    try:
        topic = await topics.create("playback.events", partitions=PARTITIONS)
        paths = await make_sources(dsn, args.sources)
        jobs = make_bodies(paths, args.warmup + args.webhooks)
        warm_parts = split(jobs[: args.warmup], args.clients)
        measured = jobs[args.warmup :]
        per_round = -(-len(measured) // args.rounds)
        warmups: list[list[int]] = []
        for r, files in enumerate(job_files):
            chunk = split(measured[r * per_round : (r + 1) * per_round], args.clients)
            warm = warm_parts if r == 0 else [[] for _ in files]
            for path, w, m in zip(files, warm, chunk, strict=True):
                write_jobs(path, w + m)
            warmups.append([len(w) for w in warm])
        size = sum(len(b) for _, b in jobs) / len(jobs)
        order = (
            "bare handler first, then the intake"
            if args.rounds == 1
            else f"interleaved: {args.rounds} rounds of bare, then intake"
        )
        print(
            f"{args.webhooks} webhooks (+{args.warmup} warm-up), {size:.0f} bytes each, over "
            f"{args.sources} sources; {args.concurrency} in flight from {args.clients} "
            f"load generator process(es); {order}",
            flush=True,
        )
        cores = os.cpu_count() or 1

        port = free_port()
        bare = await start_bare(port)
        env = {
            "DATABASE_URL": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PLAYBACK_TOPIC": topic,
        }
        intake = ServiceProcess("intake", env, log_path)
        intake.env["INTAKE_PORT"] = str(intake.metrics_port)
        intake.env["INTAKE_PUBLIC_URL"] = f"http://127.0.0.1:{intake.metrics_port}"
        await intake.start()
        assert intake.proc is not None
        print(f"intake log: {log_path} (pid {intake.proc.pid})", flush=True)
        servers = {
            "bare": (f"http://127.0.0.1:{port}", bare.pid),
            "intake": (f"http://127.0.0.1:{intake.metrics_port}", intake.proc.pid),
        }
        rounds: dict[str, list[Round]] = {"bare": [], "intake": []}
        for r, files in enumerate(job_files):
            for name, (url, pid) in servers.items():
                done = await run_round(name, url, pid, files, args.concurrency, warmups[r])
                rounds[name].append(done)
                if args.rounds > 1:
                    print(f"  round {r + 1} {name:6} {done.rate:9.1f} webhooks/s", flush=True)
        await stop_process(bare)
        bare = None
        await stop_process(intake.proc)
        bare_all, intake_all = merged(rounds["bare"]), merged(rounds["intake"])
        bare_all.show(cores)
        intake_all.show(cores)

        expected = args.warmup + args.webhooks
        records, distinct, keys = await read_topic(bootstrap, topic)
        print(
            f"topic:  {records} records ({distinct} distinct event ids, {len(keys)} keys) "
            f"for {expected} webhooks posted to the intake (warm-up included)",
            flush=True,
        )
        ratio = intake_all.rate / bare_all.rate
        print(f"ratio:  {ratio:.3f}  (intake / bare handler)")
        failures = []
        if intake_all.ok != args.webhooks or intake_all.warm_ok != args.warmup:
            failures.append(
                f"the intake answered {intake_all.ok}/{args.webhooks} (warm-up "
                f"{intake_all.warm_ok}/{args.warmup}) with 202"
            )
        if bare_all.ok != args.webhooks:
            failures.append(f"the bare handler answered {bare_all.ok}/{args.webhooks} with 202")
        if records != expected or distinct != expected:
            failures.append(
                f"the topic holds {records} records ({distinct} distinct event ids), "
                f"expected {expected}"
            )
        if failures:
            raise SystemExit("FAILED: " + "; ".join(failures))
        print(f"RESULT webhooks_per_s={intake_all.rate:.1f} ratio={ratio:.3f}")
    finally:
        await stop_process(bare)
        if intake is not None:
            await stop_process(intake.proc)
        for files in job_files:
            for path in files:
                path.unlink(missing_ok=True)
        await drop_database(admin_dsn, tag)
        await topics.delete_created()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--webhooks", type=int, default=20_000, help="measured, per server")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight in all")
    parser.add_argument("--sources", type=int, default=8, help="personal Jellyfin sources")
    parser.add_argument("--clients", type=int, default=1, help="load generator processes")
    parser.add_argument("--warmup", type=int, default=500, help="webhooks first, not counted")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="split the webhooks into this many rounds, bare then intake each (interleaved)",
    )
    args = parser.parse_args()
    if min(args.webhooks, args.concurrency, args.sources, args.clients, args.rounds) < 1:
        parser.error("--webhooks, --concurrency, --sources, --clients, --rounds: at least 1")
    if args.warmup < 0 or args.webhooks < args.rounds * args.clients:
        parser.error("--warmup must be >= 0, --webhooks at least --rounds x --clients")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    asyncio.run(bench(args))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--client":  # run_round's child processes
        _, _, client_url, client_jobs, client_concurrency, client_warmup = sys.argv
        # On uvloop, like both servers: the load generator is the limit of the bare run,
        # and a slower one would flatter the ratio.
        uvloop.run(
            client_main(client_url, Path(client_jobs), int(client_concurrency), int(client_warmup))
        )
    else:
        main()
