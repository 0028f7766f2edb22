"""The playback-topic subscriber: batches in, Postgres and the outbox, offsets out.

Failure policy:

- A record that cannot be used (not JSON, fails the schema, too large, unknown user,
  content no connection takes) is dead-lettered through the outbox in the same
  transaction as the rest of its batch, then its offset is committed with the batch:
  bad data never blocks a partition.
- Postgres or Kafka unavailable (or any other failure while writing the batch): nothing
  is committed; the batch is rewound (``nack`` seeks each partition back to the batch's
  first offset) and the consumer waits with growing backoff (1 s .. 30 s, far below
  ``max_poll_interval_ms``) before reading again. Every write is idempotent, so the
  batch's second reading has exactly the effect of the first.
- Offsets are committed only after the database commit. The batch's messages are then
  published while the next batch is written (the outbox rows are the promise that they
  will go out): one publish at a time, in batch order, so one connection's work keeps
  its order. A crash leaves unpublished rows to the relay's recovery at start-up and the
  uncommitted records to redelivery, which finds them already processed.
- A publish that fails (Kafka down) leaves its rows in the outbox; before the next batch
  is written, everything left is published in order through recovery, and while that
  fails the batch is rewound and the consumer backs off as above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import asyncpg
from faststream.kafka import KafkaMessage

from scrobble_ingest import metrics
from scrobble_ingest.batch import process_batch
from scrobble_ingest.connections_cache import ConnectionCache
from scrobble_ingest.plan import Record
from scrobble_shared import logs
from scrobble_shared.outbox import OutboxMessage, OutboxRelay
from scrobble_shared.work_message import WorkTopics

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


class Ingestor:
    """Handles one batch at a time for the subscriber."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: ConnectionCache,
        relay: OutboxRelay,
        topics: WorkTopics,
        silence: timedelta,
    ) -> None:
        self._pool = pool
        self._cache = cache
        self._relay = relay
        self._topics = topics
        self._silence = silence
        self._backoff = 0.0
        # The previous batch's publish, still in flight while this batch is written.
        self._in_flight: asyncio.Task[int] | None = None
        # A publish failed: its rows (and maybe later ones) wait in the outbox.
        self._unpublished = False

    async def handle(self, message: KafkaMessage) -> None:
        raw = message.raw_message
        records = [
            Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
            for r in (raw if isinstance(raw, tuple) else (raw,))
        ]
        first = records[0]
        with logs.bound(batch=f"{first.topic}:{first.partition}:{first.offset}+{len(records)}"):
            await self._handle(message, records)

    async def _handle(self, message: KafkaMessage, records: list[Record]) -> None:
        started = time.perf_counter()
        try:
            async with self._pool.acquire() as conn:
                result = await process_batch(
                    conn, records, self._cache.lookup, self._topics, self._silence
                )
            await self.publish_in_order(result.outbox)
        except Exception as exc:
            await self._rewind(message, exc)
            return
        await message.ack()
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        for outcome, count in result.outcomes.items():
            if count:
                metrics.EVENTS.labels(outcome).inc(count)
        for service, count in result.queued.items():
            metrics.QUEUED.labels(service).inc(count)
        if self._backoff:
            log.info("ingest: writing again after the outage")
            metrics.PAUSED.set(0)
        self._backoff = 0.0

    async def publish_in_order(self, written: dict[int, OutboxMessage]) -> None:
        """Wait for the previous batch's publish, then start this one's in the background."""
        if not await self.drain():
            self._unpublished = True
        if self._unpublished:
            # Everything left, this batch's rows included, in outbox order.
            await self._relay.recover()
            self._unpublished = False
            return
        if written:
            self._in_flight = asyncio.create_task(self._relay.publish_written(written))

    async def drain(self) -> bool:
        """Let the publish in flight finish (at shutdown too); False when it failed, its
        messages then waiting in the outbox for recovery."""
        previous, self._in_flight = self._in_flight, None
        if previous is None:
            return True
        try:
            await previous
        except Exception as exc:
            log.warning("ingest: publish failed (%s); the outbox keeps the messages", exc)
            return False
        return True

    async def _rewind(self, message: KafkaMessage, exc: Exception) -> None:
        reason = type(exc).__name__
        metrics.BATCH_FAILURES.labels(reason).inc()
        metrics.PAUSED.set(1)
        self._backoff = min(max(self._backoff * 2, MIN_BACKOFF_S), MAX_BACKOFF_S)
        if isinstance(exc, OSError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            log.warning("ingest: %s (%s); pausing %.0f s", reason, exc, self._backoff)
        else:
            log.exception("ingest: batch failed; pausing %.0f s", self._backoff)
        await message.nack()
        await asyncio.sleep(self._backoff)
