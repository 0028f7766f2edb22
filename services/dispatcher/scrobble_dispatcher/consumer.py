"""The ``scrobble.<service>`` subscribers and the retry poller.

Failure policy of the subscribers: each message names a queued row; the row is claimed in
Postgres (so a redelivered message, or the poller, cannot send it twice at once), delivered
and its outcome recorded (``delivery.py``), and only then is the batch committed. Work a
connection sends keeps its order: one connection's messages share a key and a partition
and are handled one after another. Postgres or Kafka unavailable: the batch is rewound
and the consumer backs off, like ingest. Retries never wait in the consumer: they are rows
with ``next_attempt_at`` that the poller claims when due, so a partition is never blocked
and per-message work stays far below ``max_poll_interval_ms``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import defaultdict

import asyncpg
from faststream.kafka import KafkaMessage

from scrobble_dispatcher import repository
from scrobble_dispatcher.delivery import Deliverer

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
POLL_INTERVAL_S = 1.0
POLL_BATCH = 100


def scrobble_ids(message: KafkaMessage) -> dict[bytes | None, list[uuid.UUID]]:
    """The rows a batch names, grouped by key (connection), in arrival order."""
    raw = message.raw_message
    grouped: dict[bytes | None, list[uuid.UUID]] = defaultdict(list)
    for record in raw if isinstance(raw, tuple) else (raw,):
        try:
            grouped[record.key].append(uuid.UUID(json.loads(record.value)["scrobble_id"]))
        except (ValueError, KeyError, TypeError):
            log.warning("skipping a message that names no scrobble at offset %s", record.offset)
    return grouped


class WorkSubscriber:
    def __init__(self, pool: asyncpg.Pool, deliverer: Deliverer) -> None:
        self._pool = pool
        self._deliverer = deliverer
        self._backoff = 0.0

    async def handle(self, message: KafkaMessage) -> None:
        try:
            await asyncio.gather(
                *(self._deliver_in_order(ids) for ids in scrobble_ids(message).values())
            )
        except Exception:
            self._backoff = min(max(self._backoff * 2, MIN_BACKOFF_S), MAX_BACKOFF_S)
            log.exception("dispatcher: batch failed; pausing %.0f s", self._backoff)
            await message.nack()
            await asyncio.sleep(self._backoff)
            return
        self._backoff = 0.0
        await message.ack()

    async def _deliver_in_order(self, ids: list[uuid.UUID]) -> None:
        for scrobble_id in ids:
            async with self._pool.acquire() as conn:
                claimed = await repository.claim(conn, scrobble_id)
            if claimed is not None:
                await self._deliverer.deliver(claimed)


async def poll_due_work(pool: asyncpg.Pool, deliverer: Deliverer, services: list[str]) -> None:
    """Until cancelled: claim retries whose time has come (and rows whose sender died)."""
    while True:
        try:
            for service in services:
                async with pool.acquire() as conn:
                    due = await repository.claim_due(conn, service, POLL_BATCH)
                for claimed in due:
                    await deliverer.deliver(claimed)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("retry poller: %s; trying again shortly", exc)
        await asyncio.sleep(POLL_INTERVAL_S)
