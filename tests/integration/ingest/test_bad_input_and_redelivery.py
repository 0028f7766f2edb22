"""Poison input never blocks a partition, and a batch read twice has no second effect."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import asyncpg
import pytest

from tests.support.events import USER, event
from tests.support.ingest import IngestSetup
from tests.support.kafka import collect, event_record, publish

pytestmark = pytest.mark.integration


def good_event(i: int) -> dict[str, object]:
    item = event("start", 0, content_type="track", at_s=i, content={"id": str(uuid.uuid4())})
    return item.to_json_dict()


def bad_value(i: int) -> tuple[bytes, str]:
    """The i-th poison value and the error class it must be dead-lettered with."""
    valid = good_event(i)
    kind = i % 9
    if kind == 0:
        return b"{not json", "InvalidEvent.not_json"
    if kind == 1:
        return json.dumps({k: v for k, v in valid.items() if k != "event_id"}).encode(), (
            "InvalidEvent.schema"
        )
    if kind == 2:
        big = {**valid, "padding": "x" * (1024 * 1024)}
        return json.dumps(big).encode(), "InvalidEvent.too_large"
    if kind == 3:
        return b'{"event_id": "\x00\x00"}\x00', "InvalidEvent.not_json"
    if kind == 4:
        return json.dumps({**valid, "position_ms": "12"}).encode(), "InvalidEvent.schema"
    if kind == 5:
        return json.dumps({**valid, "action": "rewind"}).encode(), "InvalidEvent.schema"
    if kind == 6:
        return b"\xff\xfe not utf-8", "InvalidEvent.not_utf8"
    if kind == 7:
        # Valid to the schema (no maximum), but no Postgres bigint holds it.
        return json.dumps({**valid, "position_ms": 2**64}).encode(), "InvalidEvent.semantics"
    return json.dumps([valid]).encode(), "InvalidEvent.not_object"


async def test_poison_interleaved_with_good_events(ingest_setup: IngestSetup) -> None:
    setup = ingest_setup
    lastfm = await setup.connect(USER, "lastfm")
    records: list[tuple[bytes | None, bytes]] = []
    expected_class: dict[bytes, str] = {}
    for i in range(1000):
        value, error_class = bad_value(i)
        expected_class[value] = error_class
        records.append((USER.encode(), value))
        records.append(event_record(good_event(i)))
    await publish(setup.infra.kafka_bootstrap, setup.playback, records)

    ingest = setup.process()
    await ingest.start()
    try:
        topics = [setup.service_topics["lastfm"], setup.dead_letters]
        messages = await collect(setup.infra.kafka_bootstrap, topics, expected=2000, deadline_s=120)
        metrics = await ingest.metrics()
    finally:
        assert await ingest.stop() == 0

    dead = [m for m in messages if m.topic == setup.dead_letters]
    work = [m for m in messages if m.topic == setup.service_topics["lastfm"]]
    assert len(work) == 1000
    assert {m.json()["connection_id"] for m in work} == {str(lastfm)}
    assert len(dead) == 1000
    positions = Counter((m.headers["source.partition"], m.headers["source.offset"]) for m in dead)
    assert max(positions.values()) == 1  # each bad record dead-lettered once
    for message in dead:
        assert message.headers["source.topic"] == setup.playback
        assert message.headers["error.class"] == expected_class[message.value]
        assert message.headers["error.message"]
    assert 'scrobble_ingest_events_total{outcome="dead_lettered"} 1000.0' in metrics
    assert 'scrobble_ingest_events_total{outcome="processed"} 1000.0' in metrics


async def count_rows(dsn: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM scrobbles) AS s, (SELECT count(*) FROM play_sessions) "
            "AS p, (SELECT count(*) FROM outbox) AS o"
        )
        assert row is not None
        return row["s"], row["p"], row["o"]
    finally:
        await conn.close()


async def test_everything_consumed_again_has_no_second_effect(ingest_setup: IngestSetup) -> None:
    """A second consumer group reads the whole topic again, as a crash before every commit
    would make it: no new row, no new message."""
    setup = ingest_setup
    await setup.connect(USER, "lastfm")
    await setup.connect(USER, "trakt")
    events = [
        event("start", 0, content_type="track"),
        event("progress", 200_000, content_type="track", at_s=200),
        event("stop", 367_000, content_type="track", at_s=367),
        event("start", 0, at_s=400),
        event("stop", 9_000_000, at_s=500),
        event("stop", 9_000_000, at_s=501),
        event("start", 0, content_type="track", user=str(uuid.uuid4())),  # dead letter
    ]
    await setup.publish_plays(events)
    topics = [*setup.service_topics.values(), setup.dead_letters]

    first = setup.process()
    await first.start()
    try:
        messages = await collect(setup.infra.kafka_bootstrap, topics, expected=5)
    finally:
        assert await first.stop() == 0
    assert Counter(m.topic for m in messages) == {
        setup.service_topics["lastfm"]: 2,
        setup.service_topics["trakt"]: 2,
        setup.dead_letters: 1,
    }
    rows_before = await count_rows(setup.database_url)

    setup.env["INGEST_GROUP_ID"] = setup.env["INGEST_GROUP_ID"] + "-again"
    second = setup.process()
    await second.start()
    try:
        again = await collect(setup.infra.kafka_bootstrap, topics, expected=6, deadline_s=8)
        metrics = await second.metrics()
    finally:
        assert await second.stop() == 0
    assert len(again) == len(messages)
    assert await count_rows(setup.database_url) == rows_before
    assert 'scrobble_ingest_events_total{outcome="duplicate"} 7.0' in metrics
