"""The ``scrobble.<service>`` subscribers and the retry poller.

Failure policy of the subscribers: each message names a queued row; the row is claimed in
Postgres (so a redelivered message, or the poller, cannot send it twice at once), delivered
and its outcome recorded (``delivery.py``), and only then is the batch committed. Work a
connection sends keeps its order: one connection's messages share a key and a partition
and are handled one after another. Postgres or Kafka unavailable: the batch is rewound
and the consumer backs off, like ingest. A backlog of one connection's scrobbles goes in
batched calls where the service takes them (Last.fm 50 per call, ListenBrainz imports).
Retries never wait in the consumer: they are rows
with ``next_attempt_at`` that the poller claims when due, so a partition is never blocked
and per-message work stays far below ``max_poll_interval_ms``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass

import asyncpg
from faststream.kafka import KafkaMessage

from scrobble_dispatcher import repository
from scrobble_dispatcher.delivery import Deliverer
from scrobble_shared.work import WorkKind

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
POLL_INTERVAL_S = 1.0
POLL_BATCH = 100
SUPERSEDED = "now playing skipped: later work of this connection was already waiting"


@dataclass(frozen=True)
class Named:
    """A row a message names, and the kind of work it says it is."""

    id: uuid.UUID
    kind: str


def scrobble_ids(message: KafkaMessage) -> dict[bytes | None, list[Named]]:
    """The rows a batch names, grouped by key (connection), in arrival order."""
    raw = message.raw_message
    grouped: dict[bytes | None, list[Named]] = defaultdict(list)
    for record in raw if isinstance(raw, tuple) else (raw,):
        try:
            value = json.loads(record.value)
            grouped[record.key].append(Named(uuid.UUID(value["scrobble_id"]), str(value["kind"])))
        except (ValueError, KeyError, TypeError):
            log.warning("skipping a message that names no scrobble at offset %s", record.offset)
    return grouped


def is_superseded(named: list[Named], index: int) -> bool:
    """Now playing followed by more work of the same connection is over already: saying
    "playing" about it would be wrong (and would split a backlog's batches)."""
    return named[index].kind == WorkKind.NOW_PLAYING.value and index < len(named) - 1


class WorkSubscriber:
    def __init__(self, deliverer: Deliverer) -> None:
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

    async def _deliver_in_order(self, named: list[Named]) -> None:
        async def claimed_rows() -> AsyncIterator[repository.Claimed]:
            for index, row in enumerate(named):
                claimed = await self._deliverer.claim(row.id)
                if claimed is None:
                    continue
                if is_superseded(named, index):
                    await self._deliverer.skip_now_playing(claimed, SUPERSEDED)
                    continue
                yield claimed

        await deliver_in_batches(self._deliverer, claimed_rows())


async def deliver_in_batches(
    deliverer: Deliverer, rows: AsyncIterable[repository.Claimed] | Iterable[repository.Claimed]
) -> None:
    """Deliver one connection's claimed rows in order; runs of scrobbles its service takes
    together (``Deliverer.batch_limit``) go in one call each. A row is claimed before it
    joins a run, and a run is at most 100 rows, so claims stay far inside their lease."""
    run: list[repository.Claimed] = []

    async def flush() -> None:
        if run:
            await deliverer.deliver_many(list(run))
            run.clear()

    async def each(claimed: repository.Claimed) -> None:
        limit = deliverer.batch_limit(claimed)
        if limit <= 1:
            await flush()
            await deliverer.deliver(claimed)
            return
        if run and run[0].connection_id != claimed.connection_id:
            await flush()
        run.append(claimed)
        if len(run) >= limit:
            await flush()

    if isinstance(rows, AsyncIterable):
        async for claimed in rows:
            await each(claimed)
    else:
        for claimed in rows:
            await each(claimed)
    await flush()


async def poll_due_work(pool: asyncpg.Pool, deliverer: Deliverer, services: list[str]) -> None:
    """Until cancelled: deliver retries whose time has come (and rows whose sender died),
    each service in a loop of its own, so a service paced far apart (Simkl: one write a
    second for the whole app) never holds up another's retries."""
    await asyncio.gather(*(_poll_service(pool, deliverer, service) for service in services))


async def _poll_service(pool: asyncpg.Pool, deliverer: Deliverer, service: str) -> None:
    while True:
        try:
            async with pool.acquire() as conn:
                due = await repository.due_work(conn, service, POLL_BATCH)
            by_connection: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
            for scrobble_id, connection_id in due:
                by_connection[connection_id].append(scrobble_id)
            for ids in by_connection.values():
                await deliver_in_batches(deliverer, _claimed_in_turn(deliverer, ids))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("retry poller (%s): %s; trying again shortly", service, exc)
        await asyncio.sleep(POLL_INTERVAL_S)


async def _claimed_in_turn(
    deliverer: Deliverer, ids: list[uuid.UUID]
) -> AsyncIterator[repository.Claimed]:
    """Each row claimed only when its turn comes: claimed all at once, the last ones would
    wait for the pacing slots of those before them past the claim's lease, and another
    replica would claim and send them too. Rows someone else claimed meanwhile are skipped."""
    for scrobble_id in ids:
        claimed = await deliverer.claim(scrobble_id)
        if claimed is not None:
            yield claimed
