"""Reading the outcome: the fakes' own records, Postgres, the dead-letter topics, the
consumer groups' lag, and whether the system has come to rest.

Everything here reads the broker and the database past the proxy or on their own ports,
so a fault the harness injects never hides the outcome.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.chaos.ledger import DbView, DeadRow, Found, content_mark
from bench.chaos.world import SERVICES, Sandbox, Topics
from bench.ingest import PARTITIONS

WAITING: Final = ("queued", "sending", "retrying")
# Work held this far ahead is parked (waiting for a reconnect), not on its way.
PARKED_AFTER_S: Final = 900


async def read_fakes(sandbox: Sandbox) -> Found:
    found = Found()
    trakt = await sandbox.state("trakt")
    found.add_records("trakt", trakt["history"])
    simkl = await sandbox.state("simkl")
    found.add_records("simkl", simkl["history"])
    lastfm = await sandbox.state("lastfm")
    found.add_records("lastfm", lastfm["scrobbles"])
    listenbrainz = await sandbox.state("listenbrainz")
    found.add_records("listenbrainz", listenbrainz["listens"])
    anilist = await sandbox.state("anilist")
    names = {u["id"]: u["name"] for u in anilist["users"]}
    for entry in anilist["entries"]:
        # Each anime user's show has the AniList id 900000 + n and the MAL id 800000 + n.
        mal = int(entry["mediaId"]) - 100_000
        key = (str(names.get(entry["userId"])), mal)
        found.anilist_progress[key] = max(found.anilist_progress.get(key, 0), entry["progress"])
    return found


async def read_db(dsn: str, names: dict[uuid.UUID, str]) -> DbView:
    """Postgres's view; ``names``: each user's account name at the fakes (a connection made
    through an OAuth flow may not know it)."""
    view = DbView()
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT s.id, s.service, s.kind, s.status, s.last_error, s.request, "
            "s.next_attempt_at, s.attempts, s.user_id, c.external_user_name AS fake_user "
            "FROM scrobbles s JOIN connections c ON c.id = s.connection_id "
            "WHERE s.kind <> 'now_playing' OR s.status IN ('queued', 'sending', 'retrying')"
        )
    finally:
        await conn.close()
    for row in rows:
        request = row["request"]
        request = json.loads(request) if isinstance(request, str) else request
        mark = content_mark(row["service"], request.get("content", {})) or "?"
        user = names.get(row["user_id"]) or str(row["fake_user"])
        if row["status"] == "dead":
            view.dead.append(
                DeadRow(
                    str(row["id"]),
                    row["service"],
                    user,
                    mark,
                    row["kind"],
                    row["last_error"] or "",
                )
            )
        elif row["status"] in WAITING:
            view.waiting.append(
                {
                    "service": row["service"],
                    "kind": row["kind"],
                    "status": row["status"],
                    "user": user,
                    "mark": mark,
                    "attempts": row["attempts"],
                    "next": str(row["next_attempt_at"]),
                    "error": row["last_error"],
                }
            )
        elif row["status"] == "failed":
            view.failed.append(
                {
                    "service": row["service"],
                    "kind": row["kind"],
                    "mark": mark,
                    "error": row["last_error"],
                }
            )
        elif row["status"] == "sent" and row["kind"] in ("scrobble", "watched"):
            view.sent.add((row["service"], user, mark))
    return view


async def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict[str, str]]]:
    """Every record of a topic: (value, headers)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[bytes | None, dict[str, str]]] = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=2000)
                for record in batch.get(tp, []):
                    headers = {k: v.decode(errors="replace") for k, v in record.headers}
                    found.append((record.value, headers))
        return found
    finally:
        await consumer.stop()


async def read_dead_letters(bootstrap: str, topics: Topics) -> dict[str, str]:
    """scrobble id -> error.reason of every dead letter on the services' DLQ topics."""
    letters: dict[str, str] = {}
    for service in SERVICES:
        for value, headers in await read_topic(bootstrap, topics.dead_letters(service)):
            try:
                scrobble_id = str(json.loads(value or b"{}")["scrobble_id"])
            except (ValueError, KeyError):
                continue
            letters[scrobble_id] = headers.get("error.reason", "")
    return letters


async def read_playback_dead_letters(bootstrap: str, topics: Topics) -> list[dict[str, str]]:
    """The playback topic's dead letters: their headers, and the value as text."""
    found = []
    for value, headers in await read_topic(bootstrap, topics.playback_dlq):
        found.append({**headers, "value": (value or b"").decode(errors="replace")})
    return found


async def group_lag(bootstrap: str, groups: Sequence[str], topics: Sequence[str]) -> int:
    """Records not yet committed by ``groups`` on ``topics`` (each group reads one topic
    or more; a group with no commit on a partition counts its whole log)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for group, topic in zip(groups, topics, strict=True):
            committed = await admin.list_consumer_group_offsets(group)
            for tp in (p for p in partitions if p.topic == topic):
                meta = committed.get(tp)
                lag += ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


@dataclass(frozen=True)
class Rest:
    """How far from rest the system is; ``quiet`` when nothing is on its way."""

    waiting_work: int
    outbox: int
    import_jobs: int
    lag: int
    plays_in_flight: int

    @property
    def quiet(self) -> bool:
        return not (
            self.waiting_work or self.outbox or self.import_jobs or self.lag or self.plays_in_flight
        )

    def __str__(self) -> str:
        return (
            f"work waiting {self.waiting_work}, outbox {self.outbox}, imports running "
            f"{self.import_jobs}, lag {self.lag}, plays in flight {self.plays_in_flight}"
        )


async def rest_state(
    dsn: str, bootstrap: str, groups: Sequence[str], topics: Sequence[str], in_flight: int
) -> Rest:
    conn = await asyncpg.connect(dsn)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM scrobbles WHERE status = ANY($1::text[]) "
            "AND (next_attempt_at IS NULL OR next_attempt_at < now() + $2 * interval '1 second')",
            list(WAITING),
            PARKED_AFTER_S,
        )
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
        jobs = await conn.fetchval(
            "SELECT count(*) FROM import_jobs WHERE state IN ('queued', 'running')"
        )
    finally:
        await conn.close()
    lag = await group_lag(bootstrap, groups, topics)
    return Rest(int(waiting), int(outbox), int(jobs), lag, in_flight)


async def wait_for_rest(
    check: Any, deadline_s: float, settle_s: float = 6.0, every_s: float = 2.0
) -> tuple[bool, float, Any]:
    """Poll ``check()`` (returns an object with ``quiet``) until it is quiet for
    ``settle_s``; (reached, seconds, last state)."""
    began = time.monotonic()
    quiet_since: float | None = None
    state = None
    while time.monotonic() - began < deadline_s:
        try:
            state = await check()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            state = None
            quiet_since = None
            print(f"  (rest check failed: {type(exc).__name__}: {exc})", flush=True)
        else:
            if state.quiet:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    return True, time.monotonic() - began, state
            else:
                quiet_since = None
        await asyncio.sleep(every_s)
    return False, time.monotonic() - began, state


async def imported_counts(dsn: str) -> dict[tuple[str, str], int]:
    """(fake user, service) -> imported plays in Postgres."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.external_user_name AS user_name, i.service, count(*) AS n "
            "FROM imported_items i JOIN connections c ON c.id = i.connection_id "
            "WHERE i.kind = 'play' GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    return {(str(r["user_name"]), str(r["service"])): int(r["n"]) for r in rows}
