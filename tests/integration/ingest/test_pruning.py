"""Event ids are forgotten after the retention, so ``processed_events`` does not grow with
every event forever; the recent ones stay and still make a repeated event a duplicate.

Found by the chaos harness's soak (bench/chaos --mode soak): one row per event, never
deleted, 17 million rows a day at 200 events/s.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest

from scrobble_ingest.store import record_new_events
from scrobble_ingest.sweeper import prune_processed_events
from tests.support.events import event

pytestmark = pytest.mark.integration


async def test_ids_older_than_the_retention_are_deleted_in_batches(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        user = uuid.uuid4()
        for age_days, count in ((40, 25), (31, 3), (29, 4), (0, 2)):
            await conn.executemany(
                "INSERT INTO processed_events (event_id, user_id, occurred_at, processed_at) "
                "VALUES ($1, $2, now(), now() - $3 * interval '1 day')",
                [(uuid.uuid4(), user, age_days) for _ in range(count)],
            )
        recent = event("start", 0, user=str(user))
        assert await record_new_events(conn, [recent]) == {uuid.UUID(recent.event_id)}

        pruned = await prune_processed_events(conn, timedelta(days=30), batch=10)

        assert pruned == 28
        assert await conn.fetchval("SELECT count(*) FROM processed_events") == 7
        # Still remembered: the same event again is nothing new.
        assert await record_new_events(conn, [recent]) == set()
        assert await prune_processed_events(conn, timedelta(days=30)) == 0
    finally:
        await conn.close()
