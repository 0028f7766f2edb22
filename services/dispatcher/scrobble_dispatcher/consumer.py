"""The ``scrobble.<service>`` subscribers and the retry poller.

Failure policy of the subscribers: each message names a queued row; the row is claimed in
Postgres (so a redelivered message, or the poller, cannot send it twice at once), delivered
and its outcome recorded (``delivery.py``), and only then is the batch committed. Work a
connection sends keeps its order: one connection's messages share a key and a partition
and are handled one after another. Postgres or Kafka unavailable (``errors.TRANSIENT``):
the batch is rewound and the consumer backs off, like ingest. Anything else a delivery
raises ends that work dead with the error and the batch goes on (``Deliverer.deliver``),
so one bad item cannot rewind its partition forever; only the batch's own statements
(claims, turns) can still rewind it. A backlog of one connection's scrobbles goes in
batched calls where the service takes them (Last.fm 50 per call, ListenBrainz imports).
Retries never wait in the consumer: they are rows
with ``next_attempt_at`` that the poller claims when due, so a partition is never blocked
and per-message work stays far below ``max_poll_interval_ms``.

Fairness (issue 15): a batch delivers one call's worth of each connection's work (its
first row, or the run of scrobbles one batched call takes) and leaves the rest of that
connection's rows to the poller (``repository.put_back``: due at once, behind the work
that went, no attempt spent); a connection that already has work waiting its turn (due
within a minute) sends nothing ahead of it, so its work keeps its order. So one user's
flood of messages holds a batch for one call at most, not for as many paced calls as it
has rows, and the next batch (another user's play) is read within a few pacing slots. The
poller is fair the same way: each round takes one call's worth per connection
(``repository.claim_due``) and delivers every connection of the round at once, so one
backlog never queues in front of another user's retry; each service has its own rounds,
back to back while they find work. Who goes first on a key many users share is settled by
the key's fair turns (``pacing.py``). Failure policy of the poller: a delivery that fails
on Postgres or the network is logged and its rows are taken again once their lease has
run out; the round's other deliveries go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

import asyncpg
from faststream.kafka import KafkaMessage

from scrobble_dispatcher import repository
from scrobble_dispatcher.delivery import Deliverer
from scrobble_dispatcher.errors import TRANSIENT
from scrobble_shared.supervise import being_cancelled
from scrobble_shared.work import WorkKind

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
POLL_INTERVAL_S = 1.0
# Connections served per service and round (one call's worth each).
POLL_CONNECTIONS = 100
SUPERSEDED = "now playing skipped: later work of this connection was already waiting"
PUT_BACK = "paced: goes after this connection's earlier work, in turn with other users"


@dataclass(frozen=True)
class Named:
    """A row a message names, and the service and kind of work it says it is."""

    id: uuid.UUID
    kind: str
    service: str = ""
    connection_id: uuid.UUID | None = None


def scrobble_ids(message: KafkaMessage) -> dict[bytes | None, list[Named]]:
    """The rows a batch names, grouped by key (connection), in arrival order."""
    raw = message.raw_message
    grouped: dict[bytes | None, list[Named]] = defaultdict(list)
    for record in raw if isinstance(raw, tuple) else (raw,):
        try:
            value = json.loads(record.value)
            connection = value.get("connection_id")
            named = Named(
                uuid.UUID(value["scrobble_id"]),
                str(value["kind"]),
                str(value.get("service", "")),
                None if connection is None else uuid.UUID(connection),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("skipping a message that names no scrobble at offset %s", record.offset)
            continue
        grouped[record.key].append(named)
    return grouped


def is_superseded(named: list[Named], index: int) -> bool:
    """Now playing followed by more work of the same connection is over already: saying
    "playing" about it would be wrong (and would split a backlog's batches)."""
    return named[index].kind == WorkKind.NOW_PLAYING.value and index < len(named) - 1


@dataclass(frozen=True)
class Turn:
    """What a batch does with one connection's rows: ``now`` its first call's worth,
    ``skipped`` now playing already over, ``later`` the rest, left to the poller."""

    now: list[Named]
    skipped: list[Named]
    later: list[Named]


def plan_turn(
    named: list[Named], call_size: Callable[[Named], int], *, waiting: bool = False
) -> Turn:
    """One call's worth of a connection's rows now (in order): the first row, and the
    scrobbles after it while one batched call takes them (``call_size``: how many works
    like this one share a call; 1 for any that cannot); none when the connection has work
    ``waiting`` its turn already, which goes first. Superseded now playing is skipped
    wherever it is; everything else waits its turn at the poller."""
    turn = Turn([], [], [])

    def joins_first_call(row: Named) -> bool:
        if waiting:
            return False
        if not turn.now:
            return True
        return not turn.later and call_size(row) > 1 and len(turn.now) < call_size(turn.now[0])

    for index, row in enumerate(named):
        if is_superseded(named, index):
            turn.skipped.append(row)
        elif joins_first_call(row):
            turn.now.append(row)
        else:
            turn.later.append(row)
    return turn


class WorkSubscriber:
    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer
        self._backoff = 0.0

    async def handle(self, message: KafkaMessage) -> None:
        try:
            grouped = list(scrobble_ids(message).values())
            waiting = await self._waiting(grouped)
            await asyncio.gather(
                *(self._deliver_in_order(named, named[0].connection_id in waiting)
                  for named in grouped)
            )  # fmt: skip
        except Exception:
            self._backoff = min(max(self._backoff * 2, MIN_BACKOFF_S), MAX_BACKOFF_S)
            log.exception("dispatcher: batch failed; pausing %.0f s", self._backoff)
            await message.nack()
            await asyncio.sleep(self._backoff)
            return
        self._backoff = 0.0
        await message.ack()

    async def _waiting(self, grouped: list[list[Named]]) -> set[uuid.UUID]:
        """The connections of the batch that have work waiting its turn already."""
        by_service: dict[str, list[uuid.UUID]] = defaultdict(list)
        for named in grouped:
            if named[0].connection_id is not None:
                by_service[named[0].service].append(named[0].connection_id)
        waiting: set[uuid.UUID] = set()
        for service, connections in by_service.items():
            waiting |= await self._deliverer.waiting_connections(service, connections)
        return waiting

    async def _deliver_in_order(self, named: list[Named], waiting: bool) -> None:
        """One connection's rows of the batch: its turn (:func:`plan_turn`)."""
        deliverer = self._deliverer
        turn = plan_turn(
            named, lambda row: deliverer.call_size(row.service, row.kind), waiting=waiting
        )
        for row in turn.skipped:
            claimed = await deliverer.claim(row.id)
            if claimed is not None:
                await deliverer.skip_now_playing(claimed, SUPERSEDED)

        async def claimed_rows() -> AsyncIterator[repository.Claimed]:
            for row in turn.now:
                claimed = await deliverer.claim(row.id)
                if claimed is not None:
                    yield claimed

        await deliver_in_batches(deliverer, claimed_rows())
        if turn.later:
            await deliverer.put_back([row.id for row in turn.later], PUT_BACK)


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
    """Until cancelled: every service's rounds of retries whose time has come (and rows
    whose sender died), each service on its own (:func:`poll_service`)."""
    async with asyncio.TaskGroup() as services_polled:
        for service in services:
            services_polled.create_task(poll_service(pool, deliverer, service))


async def poll_service(pool: asyncpg.Pool, deliverer: Deliverer, service: str) -> None:
    """Until cancelled: fair rounds (:func:`poll_round`) of one service, back to back while
    they find work, else one a second."""
    while True:
        found = 0
        try:
            found = await poll_round(pool, deliverer, service)
        except TRANSIENT as exc:
            log.warning("retry poller (%s): %s; trying again shortly", service, exc)
        except asyncio.CancelledError:
            if being_cancelled():
                raise
            # A future cancelled under the round (a connection lost mid-call): the rows it
            # held come back when their lease runs out; the poller goes on.
            log.warning("retry poller (%s): a call was cancelled under it; trying again", service)
        except Exception:
            # Not the work's fault (each delivery ends its own work on its own errors): the
            # round's rows come back after their lease. The poller never ends on an error:
            # one service's poller failing would take the others down with it (TaskGroup).
            log.exception("retry poller (%s): the round failed; trying again shortly", service)
        await asyncio.sleep(0 if found else POLL_INTERVAL_S)


async def poll_round(pool: asyncpg.Pool, deliverer: Deliverer, service: str) -> int:
    """One call's worth of due work for each of up to ``POLL_CONNECTIONS`` connections
    (those that waited longest), all of them at once, each in order; the rows taken."""
    size = deliverer.call_size(service, WorkKind.SCROBBLE.value)
    async with pool.acquire() as conn:
        due = await repository.claim_due(conn, service, POLL_CONNECTIONS, size)
    by_connection: dict[uuid.UUID, list[repository.Claimed]] = defaultdict(list)
    for claimed in due:
        by_connection[claimed.connection_id].append(claimed)
    await _all_of(deliver_in_batches(deliverer, rows) for rows in by_connection.values())
    return len(due)


async def _all_of(work: Iterable[Awaitable[None]]) -> None:
    """Await every one; a transient failure of one does not cut the others short (each
    is logged), and anything else is raised once all are done."""
    results = await asyncio.gather(*work, return_exceptions=True)
    unexpected: BaseException | None = None
    for result in results:
        if isinstance(result, (*TRANSIENT, asyncio.CancelledError)):
            # Cancelled: a future cancelled under one delivery, not this poller (gather
            # raises, rather than returns, when the poller itself is cancelled).
            log.warning("retry poller: %r; the rows it held are taken again later", result)
        elif isinstance(result, BaseException) and unexpected is None:
            unexpected = result
    if unexpected is not None:
        raise unexpected
