"""The outbox relay's record batches on the real broker: every message once, on its key's
partition, in the order written; a dead letter past the batching limit goes on its own,
and one too large for its topic goes out without its value."""

from __future__ import annotations

from collections import defaultdict

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from scrobble_shared.db.connect import create_pool
from scrobble_shared.outbox import (
    BATCHED_VALUE_LIMIT,
    MESSAGE_ID_HEADER,
    VALUE_OMITTED_HEADER,
    OutboxMessage,
    OutboxRelay,
    insert_outbox_messages,
)
from tests.support.infra import Infra
from tests.support.kafka import MAX_MESSAGE_BYTES, Message, collect
from tests.support.topics import Topics

pytestmark = pytest.mark.integration

KEYS = [f"connection-{n}".encode() for n in range(20)]


def message(topic: str, key: bytes | None, n: int, size: int = 0) -> OutboxMessage:
    value = f'{{"n": {n}, "pad": "{"x" * size}"}}'.encode()
    return OutboxMessage(topic, key, value, {"kind": "start"}, f"m{n}")


async def relay_publish(
    infra: Infra, database_url: str, messages: list[OutboxMessage]
) -> tuple[int, int]:
    """Written to the outbox and published by the relay; (published, rows left)."""
    pool = await create_pool(database_url)
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES,
        linger_ms=5,
    )
    await producer.start()
    try:
        async with pool.acquire() as conn, conn.transaction():
            written = await insert_outbox_messages(conn, messages)
        published = await OutboxRelay(pool, producer, infra.kafka_bootstrap).publish_written(
            written
        )
        async with pool.acquire() as conn:
            left = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await producer.stop()
        await pool.close()
    return published, left


def assert_in_order_on_their_partitions(found: list[Message], partitions: int = 3) -> None:
    every = list(range(partitions))
    seen: dict[tuple[str, bytes | None], list[int]] = defaultdict(list)
    for m in sorted(found, key=lambda m: (m.topic, m.partition, m.offset)):
        if m.key is not None:
            assert m.partition == DefaultPartitioner()(m.key, every, every)
        seen[(m.topic, m.key)].append(int(m.headers[MESSAGE_ID_HEADER][1:]))
    for key, order in seen.items():
        if key[1] is not None:
            assert order == sorted(order), key


async def test_many_messages_to_many_partitions(
    infra: Infra, database_url: str, topics: Topics
) -> None:
    work = [await topics.create(f"scrobble.s{n}") for n in range(2)]
    dead = await topics.create("dlq", config={"max.message.bytes": str(200_000)})
    messages = [message(work[n % 2], KEYS[n % len(KEYS)], n) for n in range(3000)]
    # Dead letters past the batching limit: one the topic takes, one it does not.
    messages.insert(1500, message(dead, KEYS[0], 3000, size=BATCHED_VALUE_LIMIT + 1))
    # aiokafka's idempotent producer keeps counting a partition's sequence past a batch the
    # broker refused, so the next send to a partition it had written before fails as out
    # of order (so it was before the batches, too): the refused one gets a partition of
    # its own here.
    every = [0, 1, 2]
    taken = DefaultPartitioner()(KEYS[0], every, every)
    alone = next(k for k in KEYS if DefaultPartitioner()(k, every, every) != taken)
    messages.insert(2000, message(dead, alone, 3001, size=300_000))

    assert await relay_publish(infra, database_url, messages) == (3002, 0)

    found = await collect(infra.kafka_bootstrap, [*work, dead], expected=3002, deadline_s=90)
    ids = [m.headers[MESSAGE_ID_HEADER] for m in found]
    assert sorted(ids) == sorted(m.message_id for m in messages)  # each once
    assert_in_order_on_their_partitions(found)
    by_id = {m.headers[MESSAGE_ID_HEADER]: m for m in found}
    assert by_id["m3000"].value == messages[1500].value
    assert by_id["m3001"].value == b""
    assert "too large for" in by_id["m3001"].headers[VALUE_OMITTED_HEADER]
    assert by_id["m7"].value == b'{"n": 7, "pad": ""}'
    assert by_id["m7"].headers["kind"] == "start"
