"""The *bare pipeline* of bench/ingest.py: the realistic ceiling for ingest's design. One
process consumes the playback topic, decodes and validates each value with the validator
ingest uses (``parse_usable_event``), COPYs one row per event into Postgres, produces one
message per event (the event as JSON, keyed like the record) and commits the offsets once
a batch's row and messages are in; no play rules, no dedupe, no outbox. The same libraries
as ingest (aiokafka, asyncpg, uvloop; a producer set up as ingest's, sending record
batches per partition as ingest's outbox relay does), each batch's sends overlapping the
next batch's COPY, as ingest overlaps its publish with the next batch.

    python -m bench.bare_pipeline BOOTSTRAP TOPIC GROUP OUT_TOPIC DSN EVENTS BATCH_SIZE

Prints ``ready`` once connected, then, when EVENTS records are in and committed, one line
of JSON: seconds and CPU seconds from ready to done, peak RSS in MB, and rows copied.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from scrobble_shared.events import InvalidEvent, parse_usable_event
from scrobble_shared.partitioning import keyed_partitioner

TABLE = "bare_pipeline_events"
COLUMNS = ["event_id", "user_id", "occurred_at"]


async def prepare_table(conn: asyncpg.Connection) -> None:
    """A table shaped like ingest's processed_events (its key and index included)."""
    await conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (LIKE processed_events INCLUDING ALL)")


async def send_batched(
    producer: AIOKafkaProducer,
    topic: str,
    partitions: list[int],
    messages: list[tuple[bytes | None, bytes]],
) -> list[asyncio.Future[Any]]:
    """Record batches per partition, as ingest's outbox relay sends (one future a batch)."""
    builders: dict[int, Any] = {}
    sent = []
    for key, value in messages:
        partition = keyed_partitioner(key, partitions, partitions)
        builder = builders.get(partition)
        if builder is None or builder.append(timestamp=None, key=key, value=value) is None:
            if builder is not None:
                sent.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            builder.append(timestamp=None, key=key, value=value)
    for partition, builder in builders.items():
        sent.append(await producer.send_batch(builder, topic, partition=partition))
    return sent


async def run(
    bootstrap: str, topic: str, group: str, out_topic: str, dsn: str, events: int, batch: int
) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    await prepare_table(conn)
    # As ingest's producer (scrobble_shared.runtime.open_core).
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        partitioner=keyed_partitioner,
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=batch,
    )
    await producer.start()
    partitions = sorted(await producer.partitions_for(out_topic))
    await consumer.start()
    print("ready", flush=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    seen = copied = 0
    pending: tuple[list[asyncio.Future[Any]], dict[TopicPartition, OffsetAndMetadata]] | None
    pending = None
    try:
        while seen < events:
            records = await consumer.getmany(timeout_ms=500, max_records=batch)
            rows = []
            messages = []
            offsets = {}
            for tp, part in records.items():
                for record in part:
                    try:
                        event = parse_usable_event(record.value or b"")
                    except InvalidEvent:
                        continue
                    rows.append((event.event_id, event.user_id, event.occurred_at))
                    messages.append((record.key, event.model_dump_json(exclude_none=True).encode()))
                seen += len(part)
                offsets[tp] = OffsetAndMetadata(part[-1].offset + 1, "")
            if rows:
                await conn.copy_records_to_table(TABLE, records=rows, columns=COLUMNS)
                copied += len(rows)
            if pending is not None:
                await asyncio.gather(*pending[0])
                await consumer.commit(pending[1])
            sends = await send_batched(producer, out_topic, partitions, messages)
            pending = (sends, offsets) if offsets else None
        if pending is not None:
            await asyncio.gather(*pending[0])
            await consumer.commit(pending[1])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "cpu_s": cpu, "rss_mb": rss_mb, "copied": copied}


def main() -> None:
    bootstrap, topic, group, out_topic, dsn, events, batch = sys.argv[1:8]
    result = uvloop.run(run(bootstrap, topic, group, out_topic, dsn, int(events), int(batch)))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
