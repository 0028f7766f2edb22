"""Crashes and outages under load: kill -9 at a random moment, Postgres away for 10 s.
Afterwards the scrobble messages are exactly the expected ones: none missing, none twice."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from collections import Counter

import asyncpg
import pytest

from tests.support.events import event
from tests.support.ingest import IngestSetup
from tests.support.kafka import Message, collect, event_record, publish

pytestmark = pytest.mark.integration

USERS = 100
PLAYS_PER_USER = 25


async def many_users_with_lastfm(setup: IngestSetup) -> dict[str, uuid.UUID]:
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    conn = await asyncpg.connect(setup.database_url)
    try:
        rows = await conn.fetch(
            "INSERT INTO connections (user_id, service) "
            "SELECT u, 'lastfm' FROM unnest($1::uuid[]) AS u RETURNING id, user_id",
            users,
        )
    finally:
        await conn.close()
    return {str(r["user_id"]): r["id"] for r in rows}


def load(
    users: dict[str, uuid.UUID],
) -> tuple[list[tuple[bytes, bytes]], set[tuple[str, str, str]]]:
    """Each play: a start (now playing) and a progress past half (the listen)."""
    records, expected = [], set()
    for user, connection in users.items():
        for n in range(PLAYS_PER_USER):
            track = str(uuid.uuid4())
            start = event(
                "start",
                0,
                content_type="track",
                user=user,
                at_s=n * 400,
                content={"id": track},
                session=f"s{n}",
            )
            listen = event(
                "progress",
                200_000,
                content_type="track",
                user=user,
                at_s=n * 400 + 200,
                content={"id": track},
                session=f"s{n}",
            )
            records += [event_record(start.to_json_dict()), event_record(listen.to_json_dict())]
            expected |= {
                (str(connection), track, "now_playing"),
                (str(connection), track, "scrobble"),
            }
    return records, expected


def check_exactly(messages: list[Message], expected: set[tuple[str, str, str]]) -> None:
    ids = Counter(m.headers["message-id"] for m in messages)
    assert [i for i, n in ids.items() if n > 1] == [], "a message went out twice"
    seen = Counter(
        (m.json()["connection_id"], m.json()["content"]["id"], m.json()["kind"]) for m in messages
    )
    assert [k for k, n in seen.items() if n > 1] == [], "a play was scrobbled twice"
    assert set(seen) == expected


async def test_kill_9_at_a_random_point_then_restart(ingest_setup: IngestSetup) -> None:
    setup = ingest_setup
    setup.env["INGEST_BATCH_SIZE"] = "100"
    users = await many_users_with_lastfm(setup)
    records, expected = load(users)
    await publish(setup.infra.kafka_bootstrap, setup.playback, records)
    topic = setup.service_topics["lastfm"]

    first = setup.process()
    await first.start()
    # Kill it while it works: once some (but not all) of the work is out.
    loop = asyncio.get_running_loop()
    until = loop.time() + 60
    target = random.randint(len(expected) // 10, len(expected) // 2)
    while loop.time() < until:
        out = await collect(setup.infra.kafka_bootstrap, [topic], expected=0, settle_s=0)
        if len(out) >= target:
            break
        await asyncio.sleep(0.05)
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    killed_at = len(await collect(setup.infra.kafka_bootstrap, [topic], expected=0, settle_s=0))
    assert killed_at < len(expected), "the process finished before it could be killed"

    second = setup.process()
    await second.start()
    try:
        messages = await collect(
            setup.infra.kafka_bootstrap, [topic], expected=len(expected), deadline_s=120, settle_s=4
        )
    finally:
        assert await second.stop() == 0
    check_exactly(messages, expected)


async def test_postgres_away_for_10_seconds(ingest_setup: IngestSetup) -> None:
    setup = ingest_setup
    if setup.infra.source != "local":
        pytest.skip("needs the local Postgres of deploy/local to stop and start it")
    from tests.support.infra import restart_local_postgres

    setup.env["INGEST_BATCH_SIZE"] = "100"
    users = await many_users_with_lastfm(setup)
    records, expected = load(users)
    topic = setup.service_topics["lastfm"]

    ingest = setup.process()
    await ingest.start()
    try:
        half = len(records) // 2
        await publish(setup.infra.kafka_bootstrap, setup.playback, records[:half])
        stopped = asyncio.Event()
        outage = asyncio.create_task(restart_local_postgres(down_s=10, stopped=stopped))
        # The second half arrives while Postgres is down (ingest may well have finished
        # the first half by then: it must meet the outage with work in hand).
        await asyncio.wait_for(stopped.wait(), timeout=60)
        await publish(setup.infra.kafka_bootstrap, setup.playback, records[half:])
        await outage
        messages = await collect(
            setup.infra.kafka_bootstrap, [topic], expected=len(expected), deadline_s=120, settle_s=3
        )
        metrics = await ingest.metrics()
    finally:
        assert await ingest.stop() == 0
    check_exactly(messages, expected)
    assert "scrobble_ingest_batch_failures_total{" in metrics, "the outage was never noticed"
    assert "scrobble_ingest_paused 0.0" in metrics
