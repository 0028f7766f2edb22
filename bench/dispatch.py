"""Dispatcher delivery against the sandbox fakes, three figures measured in one run.

    .venv/bin/python -m bench.dispatch [--lastfm-tracks 100] [--lb-users 1000]
        [--lb-calls 5000] [--bare-concurrency 10] [--e2e-rate 500] [--e2e-seconds 10]

Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (``eval "$(deploy/local/infra.sh up)"``).
It makes a private database and topics, serves the sandbox in this process, seeds users
with their own tokens there and stores their connections with encrypted tokens, and runs
``scrobble ingest`` and ``scrobble dispatcher`` as processes. Every time is the fakes' own
(``RecordedRequest.at``: when the call arrived).

(a) Rate limits on: Last.fm tracks (now playing + scrobble each) for several users are
    queued through ingest first, then the dispatcher is started; the achieved calls/s from
    the first to the last call at the fake, as a share of the fake's published 5 calls in
    any second per API key, the most calls the fake saw in any one second (pacing.py's
    lanes: at most 5, whatever the network did), and the 429s.
    A now playing whose slot is more than 5 s away is dropped unsent (delivery.py), so a
    backlog gives fewer calls than rows; the rows' outcomes are printed.
(b) Rate limits off: ListenBrainz calls (per-user pacing key, interval 0: no spacing) for
    many users, queued first, then dispatched to a fast stand-in in its own process
    (bench/fast_fake.py: answers "ok" at once; the faithful sandbox fake serves under
    200 calls/s here, which capped both sides); beside it, two bare client loops, each in
    its own process like the dispatcher, posting the same bodies to the same fake with
    ``--bare-concurrency`` requests in flight (default 10): aiohttp's client on uvloop, the
    fastest this machine has (``fastest_ratio``: the dispatcher's calls/s over its), and a
    bare httpx.AsyncClient for reference (``bare_ratio``; httpx's best was 10 in flight:
    about 685 calls/s with 10, 180 with 100). For each: calls/s, the CPU it used per call
    (the dispatcher's from when it was ready, over the calls that arrived from then on),
    and the machine's load over its stretch.
(c) End to end: "start" events of distinct tracks dated now, published at ``--e2e-rate``
    for ``--e2e-seconds`` while ingest and the dispatcher run (ListenBrainz, its rate
    limits back on); for each playing_now call the fake received, its arrival minus the
    event's occurred_at; p50 and p99.

The last line is machine readable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import uvloop
from aiokafka import AIOKafkaProducer
from cryptography.fernet import Fernet

from bench.ingest import committed_all, create_topics, delete_topics, local_infra, produce
from bench.machine import LoadWatch, MachineLoad, cpu_seconds
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_sandbox.core.recording import RecordedRequest
from scrobble_shared.crypto import TokenCipher
from tests.support.databases import create_migrated_database, drop_database
from tests.support.services import ServiceProcess, free_port

SERVICES = ["trakt", "simkl", "anilist", "lastfm", "listenbrainz"]
LASTFM_PUBLISHED_PER_S = 5.0  # the fake's per_key limit: 5 calls in any 1 s
TRACK_MS = 367_000
BUSY = ("queued", "sending", "retrying")
SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
LOG_DIR = Path(os.environ.get("BENCH_DISPATCH_LOG_DIR", ".local/logs"))


# --- load -----------------------------------------------------------------------------------
def _event(
    user: uuid.UUID, action: str, at: datetime, title: str, session: str, position_ms: int
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": str(user),
        "session_id": session,
        "action": action,
        "occurred_at": at.isoformat(),
        "position_ms": position_ms,
        "content": {
            "type": "track",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, title)),
            "title": title,
            "duration_ms": TRACK_MS,
            "artists": [f"Artist of {title}"],
            "album": "Album",
        },
    }


def track_plays(users: Sequence[uuid.UUID], tracks: int, prefix: str) -> list[tuple[bytes, bytes]]:
    """``tracks`` plays spread over ``users``: a start, then progress past half 200 s later
    (one now-playing and one scrobble call each); a user's plays 400 s apart, in the past."""
    now = datetime.now(UTC)
    per_user = -(-tracks // len(users))
    records = []
    for n in range(tracks):
        user, j = users[n % len(users)], n // len(users)
        start = now - timedelta(seconds=400 * (per_user - j) + 300)
        title, session = f"{prefix}{n}", f"{prefix}s{n}"
        for action, at, pos in (("start", start, 0), ("progress", start, 200_000)):
            when = at + timedelta(seconds=200) if action == "progress" else at
            body = _event(user, action, when, title, session, pos)
            records.append((str(user).encode(), json.dumps(body).encode()))
    return records


# --- database and processes -----------------------------------------------------------------
async def add_connections(
    dsn: str, service: str, users: Sequence[uuid.UUID], tokens: Sequence[str], key: str
) -> None:
    cipher = TokenCipher(key)
    rows = [(u, service, cipher.encrypt(t)) for u, t in zip(users, tokens, strict=True)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "connections", records=rows, columns=["user_id", "service", "access_token_enc"]
        )
    finally:
        await conn.close()


async def counts(dsn: str, service: str) -> tuple[int, int]:
    """(rows of the service, rows still queued / sending / retrying)."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(*) FILTER (WHERE status = ANY($2::text[])) AS busy "
            "FROM scrobbles WHERE service = $1",
            service,
            list(BUSY),
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["n"]), int(row["busy"])


async def outcomes(dsn: str, service: str) -> dict[str, int]:
    """Rows of the service per (kind, status), e.g. {"scrobble sent": 60}."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT kind || ' ' || status AS k, count(*) AS n FROM scrobbles "
            "WHERE service = $1 GROUP BY 1 ORDER BY 1",
            service,
        )
    finally:
        await conn.close()
    return {str(r["k"]): int(r["n"]) for r in rows}


async def wait_settled(dsn: str, service: str, deadline_s: float) -> tuple[int, int]:
    until = time.monotonic() + deadline_s
    while True:
        total, busy = await counts(dsn, service)
        if (total and not busy) or time.monotonic() > until:
            return total, busy
        await asyncio.sleep(0.25)


async def wait_ingested(bootstrap: str, topic: str, group: str, deadline_s: float = 120) -> None:
    until = time.monotonic() + deadline_s
    # Polling the broker: the only outside view of "all committed".
    while not await committed_all(bootstrap, topic, group):
        if time.monotonic() > until:
            raise SystemExit("ingest did not catch up")
        await asyncio.sleep(0.2)


# --- figures --------------------------------------------------------------------------------
def rate(records: Sequence[RecordedRequest]) -> tuple[float, float]:
    """(calls/s from the first to the last arrival, that span in seconds)."""
    return arrival_rate([r.at for r in records])


def busiest_second(arrivals: Sequence[float]) -> int:
    """The most arrivals in any window of one second (the fake's own test: a call is
    refused when the calls of the last second, itself included, would exceed 5)."""
    times = sorted(arrivals)
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def lastfm_calls(sb: Sandbox) -> list[RecordedRequest]:
    return [
        r for r in sb.lastfm.requests("/") if str(r.body.get("method", "")).startswith("track.")
    ]


def listen_name(record: RecordedRequest) -> str:
    try:
        return str(record.body["payload"][0]["track_metadata"]["track_name"])
    except (KeyError, IndexError, TypeError):
        return ""


# --- the bare loops (each in its own process) --------------------------------------------
BARE_KINDS = ("aiohttp", "httpx")


async def bare_httpx(url: str, jobs: list[tuple[str, Any]], concurrency: int) -> None:
    queue = iter(jobs)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            for token, body in queue:
                answer = await client.post(url, json=body, headers={"Authorization": token})
                answer.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bare_aiohttp(url: str, jobs: list[tuple[str, Any]], concurrency: int) -> None:
    queue = iter(jobs)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for token, body in queue:
                async with session.post(url, json=body, headers={"Authorization": token}) as answer:
                    answer.raise_for_status()
                    await answer.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def bare_child(kind: str, url: str, jobs_path: str, concurrency: int) -> None:
    """run_bare's child: the loop, then its own CPU seconds on stdout (imports left out)."""
    jobs = json.loads(Path(jobs_path).read_text())
    cpu = time.process_time()
    if kind == "aiohttp":
        uvloop.run(bare_aiohttp(url, jobs, concurrency))
    else:
        asyncio.run(bare_httpx(url, jobs, concurrency))
    print(f"cpu_s={time.process_time() - cpu}", flush=True)


async def run_bare(
    kind: str, url: str, jobs: list[tuple[str, Any]], concurrency: int, tag: str
) -> float:
    """Runs one bare loop in its own process; returns the CPU seconds its loop used."""
    path = LOG_DIR / f"{tag}-bare-jobs.json"
    path.write_text(json.dumps(jobs))
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.dispatch",
            "--bare",
            kind,
            url,
            str(path),
            str(concurrency),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the bare {kind} loop failed")
    finally:
        path.unlink(missing_ok=True)
    return float(out.decode().strip().rpartition("cpu_s=")[2])


# --- (b) the fast fake (its own process) ------------------------------------------------------
async def start_fast_fake(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.fast_fake", str(port), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    if line.strip() != b"ready":
        raise SystemExit("the fast fake did not start")
    return proc


async def fast_stats(url: str) -> tuple[list[float], list[Any]]:
    async with httpx.AsyncClient(timeout=60) as client:
        found = (await client.get(f"{url}/_stats")).json()
    return found["arrivals"], found["bodies"]


async def fast_forget(url: str) -> None:
    async with httpx.AsyncClient() as client:
        await client.delete(f"{url}/_stats")


def arrival_rate(arrivals: Sequence[float]) -> tuple[float, float]:
    """(calls/s from the first to the last arrival, that span in seconds)."""
    times = sorted(arrivals)
    if len(times) < 2 or times[-1] == times[0]:
        return float("nan"), 0.0
    span = times[-1] - times[0]
    return (len(times) - 1) / span, span


def show_client(
    name: str, arrivals: Sequence[float], calls: int, cpu_s: float, load: MachineLoad
) -> float:
    """Prints one (b) line: calls/s at the fake, CPU per call, the machine's load."""
    per_s, span = arrival_rate(arrivals)
    print(
        f"(b) {name}: {len(arrivals)} calls in {span:.2f} s = {per_s:.0f} calls/s; "
        f"CPU {cpu_s / max(calls, 1) * 1e6:.0f} us per call; {load.describe()}",
        flush=True,
    )
    return per_s


# --- (c) paced publishing -------------------------------------------------------------------
async def publish_paced(
    bootstrap: str, topic: str, users: Sequence[uuid.UUID], per_s: int, seconds: float
) -> dict[str, float]:
    """Start events of distinct tracks, each dated the moment it is sent; returns
    track title -> occurred_at (epoch seconds)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent: dict[str, float] = {}
    tick = 0.02
    per_tick = per_s * tick
    try:
        started = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * per_s + per_tick)
            while n < due:
                user = users[n % len(users)]
                title = f"e2e{n}"
                now = datetime.now(UTC)
                body = _event(user, "start", now, title, f"e2es{n}", 0)
                await producer.send(topic, json.dumps(body).encode(), key=str(user).encode())
                sent[title] = now.timestamp()
                n += 1
            await asyncio.sleep(tick)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


# --- main -----------------------------------------------------------------------------------
async def bench(args: argparse.Namespace, bootstrap: str, admin_dsn: str) -> None:
    tag = f"benchd{uuid.uuid4().hex[:8]}"
    key = Fernet.generate_key().decode()
    topic = f"{tag}.playback.events"
    prefix = f"{tag}.scrobble."
    topics = [topic, f"{topic}.dlq"]
    topics += [t for s in SERVICES for t in (f"{prefix}{s}", f"{prefix}{s}.dlq")]
    lf_users = [uuid.uuid4() for _ in range(args.lastfm_users)]
    lf_tokens = [f"lastfm-sk-{i}" for i in range(args.lastfm_users)]
    lb_users = [uuid.uuid4() for _ in range(args.lb_users)]
    lb_tokens = [f"lb-token-{i}" for i in range(args.lb_users)]
    print(f"database and topics {tag} ...", flush=True)
    dsn = await create_migrated_database(admin_dsn, tag)
    ingest: ServiceProcess | None = None
    dispatcher: ServiceProcess | None = None
    try:
        await create_topics(bootstrap, topics)
        await add_connections(dsn, "lastfm", lf_users, lf_tokens, key)
        await add_connections(dsn, "listenbrainz", lb_users, lb_tokens, key)
        async with running_sandbox(host="127.0.0.1", port=0) as sb:
            sb.lastfm.seed(
                "users",
                [{"name": f"l{i}", "session_key": t} for i, t in enumerate(lf_tokens)],
            )
            sb.listenbrainz.seed(
                "users", [{"name": f"lb{i}", "token": t} for i, t in enumerate(lb_tokens)]
            )
            group = f"{tag}.ingest"
            env = {
                "DATABASE_URL": dsn,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "PLAYBACK_TOPIC": topic,
                "SCROBBLE_TOPIC_PREFIX": prefix,
                "INGEST_GROUP_ID": group,
            }
            dispatch_env = {
                **env,
                **sb.env,
                "TOKEN_ENCRYPTION_KEY": key,
                "DISPATCHER_GROUP_ID": f"{tag}.dispatch",
                "SCROBBLE_RETRY_BACKOFF": "1s",
            }
            dispatcher_log = LOG_DIR / f"{tag}-dispatcher.log"
            ingest = ServiceProcess("ingest", env, LOG_DIR / f"{tag}-ingest.log")
            await ingest.start()
            print(f"logs: {LOG_DIR}/{tag}-*.log", flush=True)

            # (a) Last.fm with the fakes' limits on: a backlog, then the dispatcher.
            await produce(bootstrap, topic, track_plays(lf_users, args.lastfm_tracks, "lf"))
            await wait_ingested(bootstrap, topic, group)
            queued, _ = await counts(dsn, "lastfm")
            print(f"(a) {queued} Last.fm rows queued for {len(lf_users)} users", flush=True)
            dispatcher = ServiceProcess("dispatcher", dispatch_env, dispatcher_log)
            await dispatcher.start()
            _, busy = await wait_settled(dsn, "lastfm", queued / LASTFM_PUBLISHED_PER_S * 3 + 30)
            await dispatcher.stop()
            print(f"(a) rows: {await outcomes(dsn, 'lastfm')}", flush=True)
            calls = lastfm_calls(sb)
            lf_rate, lf_span = rate(calls)
            n429 = sum(1 for r in calls if r.status == 429)
            statuses = Counter(r.status for r in calls)
            print(
                f"(a) Last.fm, limits on: {len(calls)} calls in {lf_span:.1f} s = "
                f"{lf_rate:.2f} calls/s; {lf_rate / LASTFM_PUBLISHED_PER_S:.1%} of the fake's "
                f"published 5/s; at most {busiest_second([r.at for r in calls])} in any "
                f"second; 429s: {n429}; statuses {dict(statuses)}"
                + (f"; {busy} rows still busy at the deadline" if busy else ""),
                flush=True,
            )

            # (b) A fast ListenBrainz stand-in (own process): a backlog, then the
            # dispatcher; then a bare loop posting the same bodies to it.
            fast_port = free_port()
            fast = await start_fast_fake(fast_port)
            fast_url = f"http://127.0.0.1:{fast_port}"
            try:
                tracks = args.lb_calls // 2
                await produce(bootstrap, topic, track_plays(lb_users, tracks, "lb"))
                await wait_ingested(bootstrap, topic, group)
                queued, _ = await counts(dsn, "listenbrainz")
                print(f"(b) {queued} ListenBrainz rows queued for {len(lb_users)} users")
                fast_env = {**dispatch_env, "LISTENBRAINZ_API_URL": f"{fast_url}/1"}
                dispatcher = ServiceProcess("dispatcher", fast_env, dispatcher_log)
                watch = LoadWatch()
                await dispatcher.start()
                assert dispatcher.proc is not None
                # From ready on: the process's start-up (imports, connections) is not a call.
                ready_at, cpu_at_ready = time.time(), cpu_seconds(dispatcher.proc.pid)
                _, busy = await wait_settled(dsn, "listenbrainz", 120)
                cpu_s = cpu_seconds(dispatcher.proc.pid) - cpu_at_ready
                await dispatcher.stop()
                load = watch.stop()
                dispatcher = None
                arrivals, bodies = await fast_stats(fast_url)
                after_ready = sum(1 for at in arrivals if at >= ready_at)
                lb_rate = show_client("dispatcher -> fast fake", arrivals, after_ready, cpu_s, load)
                if busy:
                    print(f"(b) {busy} rows still busy at the deadline", flush=True)
                jobs = [(f"Token {lb_tokens[i % len(lb_tokens)]}", b) for i, b in enumerate(bodies)]
                bare: dict[str, float] = {}
                for kind in BARE_KINDS:
                    await fast_forget(fast_url)
                    watch = LoadWatch()
                    cpu_s = await run_bare(
                        kind, f"{fast_url}/1/submit-listens", jobs, args.bare_concurrency, tag
                    )
                    load = watch.stop()
                    bare_arrivals, _ = await fast_stats(fast_url)
                    name = f"bare {kind} loop ({args.bare_concurrency} in flight, own process)"
                    if kind == "aiohttp":
                        name += ", uvloop"
                    bare[kind] = show_client(name, bare_arrivals, len(bare_arrivals), cpu_s, load)
            finally:
                fast.terminate()
                await fast.wait()
            ratio = lb_rate / bare["httpx"]
            fastest_ratio = lb_rate / bare["aiohttp"]
            print(
                f"(b) dispatcher / bare httpx = {ratio:.3f}; "
                f"dispatcher / bare aiohttp (fastest) = {fastest_ratio:.3f}",
                flush=True,
            )
            dispatcher = ServiceProcess("dispatcher", dispatch_env, dispatcher_log)
            await dispatcher.start()

            # (c) End to end at a steady rate, ingest and dispatcher both running.
            sb.listenbrainz.log.clear()
            sb.listenbrainz.rate_limits.enabled = True
            print(
                f"(c) publishing {args.e2e_rate}/s for {args.e2e_seconds} s "
                f"over {len(lb_users)} users ...",
                flush=True,
            )
            sent = await publish_paced(bootstrap, topic, lb_users, args.e2e_rate, args.e2e_seconds)
            until = time.monotonic() + 60
            while time.monotonic() < until:
                got = {listen_name(r) for r in sb.listenbrainz.requests("/submit-listens")}
                if len(got & sent.keys()) >= len(sent):
                    break
                await asyncio.sleep(0.25)
            received = [
                r for r in sb.listenbrainz.requests("/submit-listens") if listen_name(r) in sent
            ]
            delays = sorted((r.at - sent[listen_name(r)]) * 1000 for r in received)
            p50, p99 = percentile(delays, 0.5), percentile(delays, 0.99)
            e2e429 = sum(1 for r in received if r.status == 429)
            print(
                f"(c) end to end: {len(sent)} events published, {len(received)} calls received"
                f" ({e2e429} answered 429); occurred_at -> fake: p50 {p50:.0f} ms, "
                f"p99 {p99:.0f} ms, max {max(delays, default=float('nan')):.0f} ms",
                flush=True,
            )
            print(
                f"RESULT rate_share={lf_rate / LASTFM_PUBLISHED_PER_S:.3f} n429={n429} "
                f"calls_per_s={lb_rate:.1f} bare_ratio={ratio:.3f} p99_ms={p99:.1f} "
                f"fastest_ratio={fastest_ratio:.3f}"
            )
    finally:
        for service in (dispatcher, ingest):
            if service is not None:
                await service.stop()
        await drop_database(admin_dsn, tag)
        await delete_topics(bootstrap, topics)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # One track per user: a connection's backlog goes in one batched call (50 scrobbles),
    # so calls to pace come from many connections sharing the one API key.
    parser.add_argument("--lastfm-users", type=int, default=100)
    parser.add_argument("--lastfm-tracks", type=int, default=100, help="one call each")
    parser.add_argument("--lb-users", type=int, default=1000)
    parser.add_argument("--lb-calls", type=int, default=5000)
    # httpx slows down with many connections in flight: against the fast fake a bare loop
    # made about 685 calls/s with 10, 180 with 100. The default is its best.
    parser.add_argument("--bare-concurrency", type=int, default=10)
    parser.add_argument("--e2e-rate", type=int, default=500, help="events/s")
    parser.add_argument("--e2e-seconds", type=float, default=10)
    args = parser.parse_args()
    bootstrap, admin_dsn = local_infra()
    await bench(args, bootstrap, admin_dsn)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--bare":  # run_bare's child process
        bare_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        asyncio.run(main())
