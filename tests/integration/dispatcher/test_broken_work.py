"""Issue 17, acceptance 4: work whose handling raises what no rule expects (here a row whose
stored request carries a date nothing can read) ends dead with the error, the batch's other
work is delivered, and the dispatcher's consumer moves past it: the partition is not
rewound again and again."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from scrobble_sandbox import Sandbox
from tests.integration.dispatcher.test_delivery import connect_with_token, dispatcher, sandbox
from tests.support.events import USER
from tests.support.ingest import IngestSetup
from tests.support.kafka import publish

pytestmark = pytest.mark.integration
__all__ = ["sandbox"]  # the fixture, used by name


def listen(connection: uuid.UUID, title: str) -> dict[str, object]:
    scrobble_id = uuid.uuid4()
    return {
        "scrobble_id": str(scrobble_id),
        "connection_id": str(connection),
        "user_id": USER,
        "service": "listenbrainz",
        "kind": "scrobble",
        "dedupe_key": f"k-{scrobble_id}",
        "occurred_at": datetime.now(UTC).isoformat(),
        "content": {"type": "track", "id": str(uuid.uuid4()), "title": title, "artists": ["A"]},
    }


async def queue(dsn: str, message: dict[str, object]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, "
            "content_type, content_id, request, occurred_at) "
            "VALUES ($1, $2, $3, 'listenbrainz', $4, 'scrobble', 'track', $5, $6::jsonb, now())",
            uuid.UUID(str(message["scrobble_id"])),
            uuid.UUID(str(message["connection_id"])),
            uuid.UUID(USER),
            message["dedupe_key"],
            uuid.uuid4(),
            json.dumps(message),
        )
    finally:
        await conn.close()


async def settled(dsn: str, ids: list[str], deadline_s: float = 60) -> dict[str, tuple[str, str]]:
    """Each row's (status, last_error) once none is queued, retrying or being sent."""
    conn = await asyncpg.connect(dsn)
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while True:
            rows = await conn.fetch(
                "SELECT id::text, status, coalesce(last_error, '') AS error FROM scrobbles "
                "WHERE id = ANY($1::uuid[])",
                ids,
            )
            found = {r["id"]: (r["status"], r["error"]) for r in rows}
            busy = {"queued", "retrying", "sending"}
            if all(status not in busy for status, _ in found.values()) or loop.time() > end:
                return found
            await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def committed(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)


async def test_work_that_breaks_the_handler_is_dead_and_the_partition_moves_on(
    ingest_setup: IngestSetup, sandbox: Sandbox
) -> None:
    setup, sb = ingest_setup, sandbox
    connection = await connect_with_token(setup, "listenbrainz", sb.env["SANDBOX_TOKEN"])
    first, broken, last = (listen(connection, t) for t in ("One", "Two", "Three"))
    broken["occurred_at"] = "the day before yesterday"  # nothing reads this as a date
    works = [first, broken, last]
    for work in works:
        await queue(setup.database_url, work)
    topic = setup.service_topics["listenbrainz"]
    # One key: one partition, one batch, in this order.
    await publish(
        setup.infra.kafka_bootstrap,
        topic,
        [(str(connection).encode(), json.dumps(work).encode()) for work in works],
    )
    dispatch = dispatcher(setup, sb)
    await dispatch.start()
    try:
        found = await settled(setup.database_url, [str(w["scrobble_id"]) for w in works])
        # The dispatcher's group for ListenBrainz work (one group per service).
        group = setup.env["INGEST_GROUP_ID"] + "-dispatch.listenbrainz"
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while (done := await committed(setup.infra.kafka_bootstrap, group, topic)) < 3:
            if loop.time() > end:
                break
            await asyncio.sleep(0.5)
    finally:
        assert await dispatch.stop() == 0
    by_title = dict(
        zip(["One", "Two", "Three"], [found[str(w["scrobble_id"])] for w in works], strict=True)
    )
    assert by_title["One"] == ("sent", "")
    assert by_title["Three"] == ("sent", "")
    assert by_title["Two"][0] == "dead", dispatch.log_tail()
    assert "the dispatcher failed on this work (ValueError)" in by_title["Two"][1]
    listened = [
        listened["track_metadata"]["track_name"]
        for request in sb.listenbrainz.requests("/submit-listens")
        for listened in request.body["payload"]
    ]
    assert sorted(listened) == ["One", "Three"]
    assert done == 3, "the consumer did not commit past the broken work"
