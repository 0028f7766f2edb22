"""Ingest throughput against this machine's own raw limits, measured in the same run.

    .venv/bin/python -m bench.ingest [--events 200000] [--users 10000] [--processes 1]

Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (``eval "$(deploy/local/infra.sh up)"``).
It makes a private database and topics, publishes a realistic mix of plays (tracks,
episodes, movies, anime; start, progress, pause, stop) for users with 1-3 connections
each, runs ``scrobble ingest`` as a process, and times it from the moment the service is
ready until the group's committed offsets reach the end of the topic (the service commits
only after the batch's rows are committed and its messages published).

Then, over the same topic, the *bare pipeline* (``bench/bare_pipeline.py``): one process
that decodes and validates each value with ingest's validator, COPYs one row per event
and produces one message per event, with no play rules; the realistic ceiling for this
design. ``pipeline_ratio`` is ingest's rate over the bare pipeline's. Then the raw
limits: (a) an aiokafka consume-only pass over the same topic, (b) an asyncpg COPY of the
same number of rows.

For ingest and the bare pipeline it prints the process's CPU microseconds per event (the
steadier figure on a shared machine) and the machine's load while each ran: the 1-minute
load average at the start and end, and how many cores' worth of CPU the whole machine
used (/proc/stat). The last line is machine readable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.costs import database_work, records_on, topics_named
from bench.machine import LoadWatch, MachineLoad, cpu_seconds
from tests.support.databases import create_migrated_database, drop_database

SERVICES = ["trakt", "simkl", "anilist", "lastfm", "listenbrainz"]
MIX = [("track", 0.5), ("episode", 0.25), ("movie", 0.15), ("anime_episode", 0.10)]
DURATION_MS = {
    "track": 240_000,
    "episode": 2_700_000,
    "movie": 7_200_000,
    "anime_episode": 1_440_000,
}
PARTITIONS = 3


def _content(kind: str, rng: random.Random) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": kind,
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "title": f"{kind} {rng.randint(1, 10**6)}",
        "duration_ms": DURATION_MS[kind],
    }
    if kind == "track":
        base |= {"artists": ["Artist"], "album": "Album"}
    elif kind == "movie":
        base |= {"year": 1999, "external_ids": {"tmdb": rng.randint(1, 10**6)}}
    else:
        base |= {"season": 1, "number": rng.randint(1, 24), "show": {"title": "Show"}}
        if kind == "anime_episode":
            base["show"]["external_ids"] = {"mal": rng.randint(1, 60000)}
    return base


def _play(user: str, at: datetime, rng: random.Random) -> list[dict[str, Any]]:
    kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
    content = _content(kind, rng)
    duration = content["duration_ms"]
    session = f"s{rng.getrandbits(32)}"
    steps = [("start", 0.0), ("progress", 0.3), ("pause", 0.45), ("resume", 0.45)]
    steps += [("progress", 0.7), ("progress", 0.9), ("stop", rng.choice([0.5, 0.95, 1.0]))]
    events = []
    for i, (action, fraction) in enumerate(steps):
        events.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "user_id": user,
                "session_id": session,
                "action": action,
                "occurred_at": (at + timedelta(seconds=i * 30)).isoformat(),
                "position_ms": int(duration * fraction),
                "content": content,
            }
        )
    return events


def make_load(n_events: int, users: list[str], seed: int = 7) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    records: list[tuple[bytes, bytes]] = []
    while len(records) < n_events:
        user = rng.choice(users)
        for item in _play(user, start + timedelta(minutes=len(records)), rng):
            records.append((user.encode(), json.dumps(item).encode()))
    return records[:n_events]


async def setup_database(admin_dsn: str, name: str, users: list[str], rng: random.Random) -> str:
    dsn = await create_migrated_database(admin_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        rows = []
        for user in users:
            services = rng.sample(SERVICES, rng.randint(1, 3))
            rows += [(uuid.UUID(user), s) for s in services]
        await conn.copy_records_to_table(
            "connections", records=rows, columns=["user_id", "service"]
        )
    finally:
        await conn.close()
    return dsn


def local_infra() -> tuple[str, str]:
    """The Kafka bootstrap servers and the admin DSN of Postgres, from the environment."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    admin_dsn = os.environ.get("DATABASE_URL")
    if not bootstrap or not admin_dsn:
        raise SystemExit(
            'set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (eval "$(deploy/local/infra.sh up)")'
        )
    return bootstrap, admin_dsn


async def create_topics(bootstrap: str, names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=n, num_partitions=PARTITIONS, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed_all(bootstrap: str, topic: str, group: str) -> bool:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            if (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


async def wait_ready(port: int, proc: asyncio.subprocess.Process, timeout_s: float = 60) -> None:
    async with httpx.AsyncClient() as client:
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            if proc.returncode is not None:
                raise SystemExit("ingest exited before it was ready")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("ingest not ready")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _open_log() -> BinaryIO:
    path = Path(os.environ.get("BENCH_INGEST_LOG", ".local/logs/bench-ingest.log"))
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"ingest log: {path}", flush=True)
    return path.open("wb")


async def outbox_empty(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM outbox)"))
    finally:
        await conn.close()


@dataclass(frozen=True)
class Run:
    """One measured pass over the topic: wall and CPU seconds, peak RSS, the machine."""

    seconds: float
    cpu_s: float
    rss_mb: float
    machine: MachineLoad

    def show(self, name: str, events: int) -> None:
        print(
            f"{name + ' CPU:':15}{self.cpu_s:10.1f} s        "
            f"({self.cpu_s / events * 1e6:.0f} us/event, "
            f"{self.cpu_s / self.seconds * 100:.0f}% of one core)\n"
            f"{'':15}{self.machine.describe()}"
        )


async def run_ingest(
    env: dict[str, str], topic: str, group: str, bootstrap: str, dsn: str, processes: int = 1
) -> Run:
    """Seconds from the first process ready to all committed and published, their CPU
    seconds together, the largest peak RSS of one process in MB. With several processes,
    the others' start-up counts in the CPU figure (an overstatement, not a flattering one)."""
    first_port = 19000 + os.getpid() % 900
    scrobble = str(Path(sys.executable).with_name("scrobble"))
    log = _open_log()
    procs = [
        await asyncio.create_subprocess_exec(
            scrobble,
            "ingest",
            env={**os.environ, **env, "METRICS_PORT": str(first_port + n)},
            stdout=log,
            stderr=log,
        )
        for n in range(processes)
    ]
    try:
        await wait_ready(first_port, procs[0])  # it consumes from then on
        started = time.perf_counter()
        watch = LoadWatch()
        cpu_before = sum(cpu_seconds(proc.pid) for proc in procs)
        for n, proc in enumerate(procs[1:], start=1):
            await wait_ready(first_port + n, proc)
        # Polling the broker: the only outside view of "all committed".
        while not await committed_all(bootstrap, topic, group):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        # Offsets are committed once a batch is in Postgres; its messages may still be
        # on their way out: the run ends when the outbox is empty too.
        while not await outbox_empty(dsn):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(proc.pid) for proc in procs) - cpu_before
        machine = watch.stop()
        rss = max(peak_rss_mb(proc.pid) for proc in procs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await proc.wait()
        log.close()
    return Run(elapsed, cpu, rss, machine)


async def run_bare_pipeline(
    bootstrap: str, topic: str, out_topic: str, dsn: str, events: int, batch_size: int
) -> Run:
    """``bench.bare_pipeline`` over the same topic in a group of its own; its own figures
    are from its ready to its last commit, the machine's over the same stretch."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bare_pipeline",
        bootstrap,
        topic,
        f"bare-{uuid.uuid4().hex[:8]}",
        out_topic,
        dsn,
        str(events),
        str(batch_size),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        if (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).strip() != b"ready":
            raise SystemExit("the bare pipeline did not start")
        watch = LoadWatch()
        line = await proc.stdout.readline()
        machine = watch.stop()
        if not line:
            raise SystemExit("the bare pipeline exited without its figures")
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    said = json.loads(line)
    if said["copied"] != events:
        raise SystemExit(f"the bare pipeline copied {said['copied']} of {events} events")
    return Run(said["seconds"], said["cpu_s"], said["rss_mb"], machine)


async def consume_only(bootstrap: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            if started is None and batch:
                started = time.perf_counter()
            seen += sum(len(v) for v in batch.values())
    finally:
        elapsed = time.perf_counter() - (started or time.perf_counter())
        await consumer.stop()
    return n / elapsed


async def bulk_insert(dsn: str, n: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        rows = [(uuid.uuid4(), uuid.uuid4(), now) for _ in range(n)]
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "processed_events", records=rows, columns=["event_id", "user_id", "occurred_at"]
        )
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return n / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument(
        "--processes", type=int, default=1, help="ingest processes in the one consumer group"
    )
    args = parser.parse_args()
    bootstrap, admin_dsn = local_infra()

    rng = random.Random(11)
    tag = f"bench{uuid.uuid4().hex[:8]}"
    users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.users)]
    topic = f"{tag}.playback.events"
    bare_topic = f"{tag}.bare"
    topics = [topic, f"{topic}.dlq", bare_topic, *(f"{tag}.scrobble.{s}" for s in SERVICES)]
    print(f"preparing {args.events} events for {args.users} users ...", flush=True)
    dsn = await setup_database(admin_dsn, tag, users, rng)
    try:
        await create_topics(bootstrap, topics)
        records = make_load(args.events, users)
        await produce(bootstrap, topic, records)
        del records
        group = f"{tag}.ingest"
        env = {
            "DATABASE_URL": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PLAYBACK_TOPIC": topic,
            "SCROBBLE_TOPIC_PREFIX": f"{tag}.scrobble.",
            "INGEST_GROUP_ID": group,
            "INGEST_BATCH_SIZE": str(args.batch_size),
        }
        db_before = await database_work(dsn)
        ingest = await run_ingest(env, topic, group, bootstrap, dsn, args.processes)
        db_work = (await database_work(dsn)).since(db_before)
        written = set(await topics_named(bootstrap, f"{tag}.")) - {topic, bare_topic}
        produced = sum((await records_on(bootstrap, sorted(written))).values())
        ingest_rate = args.events / ingest.seconds
        conn = await asyncpg.connect(dsn)
        try:
            queued = await conn.fetchval("SELECT count(*) FROM scrobbles")
        finally:
            await conn.close()
        print(
            f"ingest:        {ingest_rate:10.0f} events/s  ({args.events} events in "
            f"{ingest.seconds:.1f} s, {queued} scrobbles queued, {args.processes} process(es), "
            f"peak RSS {ingest.rss_mb:.0f} MB per process)"
        )
        # Less sensitive than the rate to whatever else shares the machine's cores.
        ingest.show("ingest", args.events)
        print("\n".join(db_work.describe(args.events, "event")))
        print(
            f"kafka:         {1:10.4f} records read, {produced / args.events:.4f} written per "
            f"event (work and dead letters: {produced} for {args.events} events)"
        )
        bare = await run_bare_pipeline(
            bootstrap, topic, bare_topic, dsn, args.events, args.batch_size
        )
        bare_rate = args.events / bare.seconds
        print(
            f"bare pipeline: {bare_rate:10.0f} events/s  (decode and validate, COPY a row, "
            f"produce a message per event; peak RSS {bare.rss_mb:.0f} MB)"
        )
        bare.show("bare", args.events)
        pipeline_ratio = ingest_rate / bare_rate
        print(
            f"pipeline:      {pipeline_ratio:10.3f}  (ingest / bare pipeline, events/s; "
            f"by CPU per event, bare / ingest: {bare.cpu_s / ingest.cpu_s:.3f})"
        )
        consume_rate = await consume_only(bootstrap, topic, args.events)
        print(f"raw consume:   {consume_rate:10.0f} records/s (aiokafka, same topic)")
        insert_rate = await bulk_insert(dsn, args.events)
        print(f"raw insert:    {insert_rate:10.0f} rows/s    (asyncpg COPY, same count)")
        slower = min(consume_rate, insert_rate)
        ratio = ingest_rate / slower
        print(f"ratio:         {ratio:10.3f}  (ingest / slower raw limit)")
        print(
            f"RESULT events_per_s={ingest_rate:.1f} ratio={ratio:.3f} "
            f"rss_mb={ingest.rss_mb:.1f} pipeline_ratio={pipeline_ratio:.3f}"
        )
    finally:
        await drop_database(admin_dsn, tag)
        # With those the broker made when ingest first produced to them.
        await delete_topics(bootstrap, sorted({*topics, *await topics_named(bootstrap, tag)}))


if __name__ == "__main__":
    asyncio.run(main())
