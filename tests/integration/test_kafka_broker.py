"""The real broker: a consumer group with manual commits, and a restarted consumer that
resumes right after the last committed offset (nothing lost, nothing seen twice)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.support.infra import Infra
from tests.support.topics import Topics

pytestmark = pytest.mark.integration


async def produce(bootstrap: str, topic: str, values: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value.encode(), key=b"same-key")
    finally:
        await producer.stop()


def consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def take(c: AIOKafkaConsumer, count: int, deadline_s: float = 30) -> list[str]:
    seen: list[str] = []

    async def loop() -> None:
        while len(seen) < count:
            batch = await c.getmany(timeout_ms=500, max_records=count - len(seen))
            for records in batch.values():
                seen.extend(r.value.decode() for r in records)

    await asyncio.wait_for(loop(), deadline_s)
    return seen


async def test_restarted_consumer_resumes_after_last_commit(infra: Infra, topics: Topics) -> None:
    topic = await topics.create("events", partitions=1)
    group = topics.name("group")
    await produce(infra.kafka_bootstrap, topic, [f"m{i}" for i in range(10)])

    first = consumer(infra.kafka_bootstrap, topic, group)
    await first.start()
    try:
        assert await take(first, 4) == ["m0", "m1", "m2", "m3"]
        await first.commit()  # commits what was consumed: offsets up to m3
        # Consumed but never committed: a crash here must redeliver these.
        assert await take(first, 3) == ["m4", "m5", "m6"]
    finally:
        await first.stop()

    second = consumer(infra.kafka_bootstrap, topic, group)
    await second.start()
    try:
        partition = TopicPartition(topic, 0)
        assert await second.committed(partition) == 4
        assert await take(second, 6) == [f"m{i}" for i in range(4, 10)]
        await second.commit({partition: 10})
        assert await second.committed(partition) == 10
        assert await second.getmany(timeout_ms=1000) == {}
    finally:
        await second.stop()


async def test_group_members_share_partitions_and_each_message_once(
    infra: Infra, topics: Topics
) -> None:
    topic = await topics.create("shared", partitions=3)
    group = topics.name("group")
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"v{i}".encode(), partition=i % 3)
    finally:
        await producer.stop()

    members = [consumer(infra.kafka_bootstrap, topic, group) for _ in range(2)]
    for member in members:
        await member.start()
    try:
        seen: list[str] = []

        async def drain(member: AIOKafkaConsumer) -> None:
            loop = asyncio.get_running_loop()
            until = loop.time() + 30
            while len(seen) < 30 and loop.time() < until:
                batch = await member.getmany(timeout_ms=300)
                for records in batch.values():
                    seen.extend(r.value.decode() for r in records)
                if batch:
                    await member.commit()

        await asyncio.gather(*(drain(m) for m in members))
        assert sorted(seen) == sorted(f"v{i}" for i in range(30))
        assignments = [m.assignment() for m in members]
        assert set().union(*assignments) == {TopicPartition(topic, p) for p in range(3)}
    finally:
        for member in members:
            await member.stop()
