"""The transactional outbox: messages written with the work they announce, published after.

Failure policy: a message is published by whoever holds its row lock, and its row is
deleted in the same transaction, after the broker acknowledged it. A process that dies
while publishing releases its locks with its connection; the rows stay, and
:meth:`OutboxRelay.recover` (at start-up and then periodically, in any replica) takes
them over. Because the dead process may have published some of them before it died,
recovery first reads the tail of each target partition for the ``message-id`` headers
already there and publishes only the rest: nothing is lost and nothing goes out twice.
A publish that fails (broker down) rolls the transaction back, so the rows wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from scrobble_shared.db import Conn
from scrobble_shared.partitioning import keyed_partitioner

log = logging.getLogger(__name__)

MESSAGE_ID_HEADER = "message-id"
VALUE_OMITTED_HEADER = "value.omitted"
TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)
# Larger values are sent one by one (see OutboxRelay._send_batched): a record batch is as
# large as its largest message, and these are dead letters, rare and up to the playback
# topic's own limit.
BATCHED_VALUE_LIMIT: Final = 64 * 1024


async def await_sent(future: asyncio.Future[Any]) -> None:
    await future


# How far before a leftover row's creation its message may sit in the log (clock skew
# between Postgres and the broker, and the time a send spends in flight).
RECOVERY_LOOKBACK = timedelta(seconds=30)


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    message_id: str


async def insert_outbox(conn: Conn, messages: Sequence[OutboxMessage]) -> list[int]:
    return list(await insert_outbox_messages(conn, messages))


async def insert_outbox_messages(
    conn: Conn, messages: Sequence[OutboxMessage]
) -> dict[int, OutboxMessage]:
    """Write outbox rows; returns each row id with its message, so the writer can publish
    them (:meth:`OutboxRelay.publish_written`) without reading the values back."""
    if not messages:
        return {}
    rows = await conn.fetch(
        """
        INSERT INTO outbox (topic, key, value, headers, message_id)
        SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[], $5::text[])
        RETURNING id, message_id
        """,
        [m.topic for m in messages],
        [m.key for m in messages],
        [m.value for m in messages],
        [orjson.dumps(m.headers).decode() for m in messages],
        [m.message_id for m in messages],
    )
    by_message_id = {m.message_id: m for m in messages}
    return {row["id"]: by_message_id[row["message_id"]] for row in rows}


@dataclass(frozen=True)
class _Row:
    id: int
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    message_id: str
    created_at: datetime


_ROW_COLUMNS: Final = ", ".join(f.name for f in dataclasses.fields(_Row))


def _row(record: asyncpg.Record) -> _Row:
    return _Row(**{**dict(record), "headers": json.loads(record["headers"])})


def _headers(row: OutboxMessage, extra: dict[str, str]) -> list[tuple[str, bytes]]:
    headers = {**row.headers, **extra, MESSAGE_ID_HEADER: row.message_id}
    return [(k, v.encode()) for k, v in headers.items()]


def _add(batch: tuple[BatchBuilder, list[OutboxMessage]], row: OutboxMessage) -> bool:
    """Whether the message went into the batch (False: the batch is full)."""
    builder, members = batch
    added = builder.append(timestamp=None, key=row.key, value=row.value, headers=_headers(row, {}))
    if added is None:
        return False
    members.append(row)
    return True


def _pair(row: _Row) -> tuple[int, OutboxMessage]:
    return row.id, OutboxMessage(row.topic, row.key, row.value, row.headers, row.message_id)


class OutboxRelay:
    """Publishes outbox rows to Kafka; see the module docstring for the failure policy."""

    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, bootstrap: str) -> None:
        self._pool = pool
        self._producer = producer
        self._bootstrap = bootstrap

    async def publish(self, ids: Sequence[int]) -> int:
        """Publish the given rows (those nobody else took over); returns how many."""
        if not ids:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id "  # noqa: S608
                "FOR UPDATE SKIP LOCKED",
                list(ids),
            )
            return await self._send_and_delete(conn, [_pair(_row(r)) for r in rows])

    async def publish_written(self, written: Mapping[int, OutboxMessage]) -> int:
        """Publish rows this process has just written, from the messages it still holds:
        only the ids are locked and read, not the values. Rows another process took over
        are skipped, as in :meth:`publish`."""
        if not written:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await conn.fetch(
                "SELECT id FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id "
                "FOR UPDATE SKIP LOCKED",
                list(written),
            )
            return await self._send_and_delete(conn, [(r["id"], written[r["id"]]) for r in locked])

    async def recover(self, older_than: timedelta = timedelta(seconds=0), limit: int = 5000) -> int:
        """Publish leftover rows of any process, skipping messages already in the log."""
        total = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                records = await conn.fetch(
                    f"SELECT {_ROW_COLUMNS} FROM outbox WHERE created_at <= now() - $1::interval "  # noqa: S608
                    "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    older_than,
                    limit,
                )
                if not records:
                    return total
                rows = [_row(r) for r in records]
                present = await self._already_published(rows)
                missing = [r for r in rows if r.message_id not in present]
                if present:
                    log.info("outbox recovery: %d message(s) were already published", len(present))
                await self._send_and_delete(conn, [_pair(r) for r in missing])
                await conn.execute(
                    "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r.id for r in rows]
                )
                total += len(missing)
            if len(records) < limit:
                return total

    async def _send(
        self, row: OutboxMessage, value: bytes, extra: dict[str, str]
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self._producer.send(
            row.topic, value, key=row.key, headers=_headers(row, extra)
        )
        return future

    async def _send_and_delete(self, conn: Conn, rows: Sequence[tuple[int, OutboxMessage]]) -> int:
        if not rows:
            return 0
        await self._send_batched([row for _, row in rows])
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [i for i, _ in rows])
        return len(rows)

    async def _send_batched(self, rows: Sequence[OutboxMessage]) -> None:
        """Send every message, in order within each partition; raises unless all went out.

        Messages go in record batches built here, one per partition at a time, instead of
        one ``send`` each: aiokafka's per-message path (partitioner, accumulator, a future
        per message) was most of a publish's CPU. A value over
        :data:`BATCHED_VALUE_LIMIT` (only ever a dead letter) takes the per-message path,
        which handles a message too large for its topic; so does every message of a batch
        the broker refused as too large.
        """
        partitions: dict[str, list[int]] = {}
        open_batches: dict[TopicPartition, tuple[BatchBuilder, list[OutboxMessage]]] = {}
        sent: list[tuple[asyncio.Future[Any], list[OutboxMessage]]] = []

        async def close(tp: TopicPartition) -> None:
            builder, members = open_batches.pop(tp)
            future = await self._producer.send_batch(builder, tp.topic, partition=tp.partition)
            sent.append((future, members))

        for row in rows:
            if len(row.value) > BATCHED_VALUE_LIMIT:
                for tp in list(open_batches):  # what came before goes first
                    await close(tp)
                try:
                    sent.append((await self._send(row, row.value, {}), [row]))
                except TOO_LARGE:
                    sent.append((await self._send_without_value(row), [row]))
                continue
            if row.topic not in partitions:
                partitions[row.topic] = sorted(await self._producer.partitions_for(row.topic))
            every = partitions[row.topic]
            tp = TopicPartition(row.topic, keyed_partitioner(row.key, every, every))
            if tp in open_batches and not _add(open_batches[tp], row):
                await close(tp)  # full: sent, and the message starts the next one
            if tp not in open_batches:
                open_batches[tp] = (self._producer.create_batch(), [])
                if not _add(open_batches[tp], row):
                    raise RuntimeError(f"an empty record batch refused {row.message_id}")
        for tp in list(open_batches):
            await close(tp)
        for future, members in sent:
            try:
                await future
            except TOO_LARGE:
                await self._send_each(members)

    async def _send_each(self, rows: Sequence[OutboxMessage]) -> None:
        """One ``send`` per message; one too large for its topic goes without its value."""
        sends = []
        for row in rows:
            try:
                sends.append(await self._send(row, row.value, {}))
            except TOO_LARGE:
                sends.append(await self._send_without_value(row))
        for row, outcome in zip(
            rows, await asyncio.gather(*sends, return_exceptions=True), strict=True
        ):
            if isinstance(outcome, TOO_LARGE):
                await await_sent(await self._send_without_value(row))
            elif isinstance(outcome, BaseException):
                raise outcome

    async def _send_without_value(self, row: OutboxMessage) -> asyncio.Future[Any]:
        # A dead letter larger than its topic takes would block the partition forever;
        # it goes out without its value instead, saying so, rather than not at all.
        log.warning(
            "outbox: %s is too large for %s; sent without its value", row.message_id, row.topic
        )
        note = {VALUE_OMITTED_HEADER: f"{len(row.value)} bytes, too large for {row.topic}"}
        return await self._send(row, b"", note)

    async def _already_published(self, rows: Sequence[_Row]) -> set[str]:
        """Message ids of ``rows`` found in the tail of the partitions they map to."""
        partitioner = DefaultPartitioner()
        since: dict[TopicPartition, datetime] = {}
        wanted = {r.message_id for r in rows}
        for row in rows:
            available = sorted(await self._producer.partitions_for(row.topic))
            # The producer's own partitioner: the same key lands on the same partition.
            partition = partitioner(row.key, available, available)
            tp = TopicPartition(row.topic, partition)
            since[tp] = min(since.get(tp, row.created_at), row.created_at)
        found: set[str] = set()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            consumer.assign(list(since))
            starts = await consumer.offsets_for_times(
                {tp: int((at - RECOVERY_LOOKBACK).timestamp() * 1000) for tp, at in since.items()}
            )
            ends = await consumer.end_offsets(list(since))
            for tp in since:
                start = starts.get(tp)
                if start is None or start.offset >= ends[tp]:
                    continue
                consumer.seek(tp, start.offset)
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for record in batch.get(tp, []):
                        for name, value in record.headers:
                            if name == MESSAGE_ID_HEADER and value.decode() in wanted:
                                found.add(value.decode())
        finally:
            await consumer.stop()
        return found
