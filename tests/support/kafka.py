"""Reading and writing the real broker from tests: publish events, collect what came out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


async def publish(bootstrap: str, topic: str, values: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_MESSAGE_BYTES, linger_ms=5
    )
    await producer.start()
    try:
        sends = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return len(sends)


def event_record(event: dict[str, Any]) -> tuple[bytes, bytes]:
    return event["user_id"].encode(), json.dumps(event).encode()


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    def json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.value)
        return loaded


async def collect(
    bootstrap: str,
    topics: list[str],
    expected: int,
    deadline_s: float = 60,
    settle_s: float = 2.0,
) -> list[Message]:
    """Read the topics from the start until ``expected`` messages arrived, then keep reading
    for ``settle_s`` so that extra (duplicate) messages would be seen too."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
    )
    await consumer.start()
    found: list[Message] = []
    loop = asyncio.get_running_loop()
    try:
        until = loop.time() + deadline_s
        settle_until: float | None = None
        while loop.time() < until:
            if len(found) >= expected and settle_until is None:
                settle_until = loop.time() + settle_s
            if settle_until is not None and loop.time() >= settle_until:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(
                    Message(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        {k: v.decode() for k, v in r.headers},
                    )
                    for r in records
                )
    finally:
        await consumer.stop()
    return found


async def wait_for_group(bootstrap: str, group: str, members: int, deadline_s: float = 60) -> None:
    """Until ``group`` is Stable with ``members`` members (their partitions assigned)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline_s
        while loop.time() < until:
            (answer,) = await admin.describe_consumer_groups([group])
            (found,) = answer.to_object()["groups"]
            if found["state"] == "Stable" and len(found["members"]) == members:
                return
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    raise AssertionError(f"consumer group {group} did not settle with {members} members")
