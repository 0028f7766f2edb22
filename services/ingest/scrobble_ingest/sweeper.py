"""Plays that fell silent, and event ids too old to matter.

Plays that fell silent: players that never send stop still get their watched entry.

Every ``interval`` the sweeper takes unfinished plays that no event has touched for longer
than the silence timeout, by our clock rather than the media server's (row locks with
SKIP LOCKED, so replicas share the work), closes them, and queues a watched entry for
each video connection whose threshold the play crossed. The
work goes through the same outbox as the consumer's, so a crash mid-sweep loses nothing:
the transaction rolls back and the next sweep finds the same plays.

Event ids: ``processed_events`` holds every event id taken in, one row per event, so that
the same event again (a redelivery, a resent webhook) has no effect. Past the retention
(``INGEST_PROCESSED_EVENTS_RETENTION``, longer than anything is redelivered or replayed)
the rows are deleted, a batch at a time, on the same rounds: otherwise the table grows with
every event forever (the chaos harness's soak measured it: 17 million rows a day at 200
events/s).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg

from scrobble_ingest import metrics, store
from scrobble_ingest.connections_cache import ConnectionCache
from scrobble_shared.db import Conn
from scrobble_shared.db.scrobbles import queue_scrobbles
from scrobble_shared.outbox import OutboxRelay, insert_outbox
from scrobble_shared.plays import Play
from scrobble_shared.work import finished_play_work
from scrobble_shared.work_message import WorkTopics, new_scrobble

log = logging.getLogger(__name__)


async def sweep_once(
    conn: Conn,
    cache: ConnectionCache,
    topics: WorkTopics,
    silence: timedelta,
    limit: int = 1000,
) -> list[int]:
    """Close silent plays and queue what they mean; returns the outbox ids to publish."""
    async with conn.transaction():
        rows = await conn.fetch(
            f"""
            SELECT {store.PLAY_COLUMNS}, content FROM play_sessions
            WHERE finished_at IS NULL AND touched_at < now() - $1::interval
            ORDER BY touched_at LIMIT $2 FOR UPDATE SKIP LOCKED
            """,  # noqa: S608 - only the constant column list is formatted in
            silence,
            limit,
        )
        if not rows:
            return []
        plays: Sequence[Play] = [store.play_from_row(r) for r in rows]
        contents: list[dict[str, Any]] = [store.json_value(r["content"]) for r in rows]
        await conn.execute(
            "UPDATE play_sessions SET finished_at = last_event_at WHERE id = ANY($1::uuid[])",
            [p.id for p in plays],
        )
        connections = await cache.lookup(conn, sorted({p.user_id for p in plays}))
        scrobbles = [
            new_scrobble(work, play.user_id, content, None)
            for play, content in zip(plays, contents, strict=True)
            for rules in connections.get(play.user_id, [])
            for work in finished_play_work(rules, play)
        ]
        messages, queued = await queue_scrobbles(conn, scrobbles, topics)
        ids = await insert_outbox(conn, messages)
    metrics.PLAYS_FINISHED_BY_SILENCE.inc(len(plays))
    for service, count in queued.items():
        metrics.QUEUED.labels(service).inc(count)
    return ids


PRUNE_BATCH = 10_000


async def prune_processed_events(
    conn: Conn, retention: timedelta, batch: int = PRUNE_BATCH, most: int = 100
) -> int:
    """Forget event ids taken in longer than ``retention`` ago, ``batch`` rows a statement
    (short transactions, beside the consumer's), at most ``most`` statements a round;
    returns how many."""
    total = 0
    for _ in range(most):
        deleted = await conn.fetchval(
            "WITH old AS (SELECT event_id FROM processed_events "
            "WHERE processed_at < now() - $1::interval LIMIT $2), "
            "gone AS (DELETE FROM processed_events p USING old "
            "WHERE p.event_id = old.event_id RETURNING 1) "
            "SELECT count(*) FROM gone",
            retention,
            batch,
        )
        total += int(deleted)
        if deleted < batch:
            break
    return total


async def run_sweeper(
    pool: asyncpg.Pool,
    cache: ConnectionCache,
    relay: OutboxRelay,
    topics: WorkTopics,
    silence: timedelta,
    interval_s: float = 60.0,
    retention: timedelta | None = None,
) -> None:
    """Sweep (and prune, with a ``retention``) until cancelled; a failed round is logged
    and tried again next time."""
    while True:
        try:
            async with pool.acquire() as conn:
                ids = await sweep_once(conn, cache, topics, silence)
            await relay.publish(ids)
            if retention is not None:
                async with pool.acquire() as conn:
                    pruned = await prune_processed_events(conn, retention)
                if pruned:
                    log.info("forgot %d event id(s) older than %s", pruned, retention)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("silence sweep failed (%s); next try in %.0f s", exc, interval_s)
        await asyncio.sleep(interval_s)
