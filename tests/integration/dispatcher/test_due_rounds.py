"""The statements behind fair rounds (issue 15), on a real Postgres: the poller takes one
call's worth of each connection with due work, not the oldest rows whoever they belong
to; a consumer leaves the rest of a connection's rows behind its waiting work."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from scrobble_dispatcher import repository
from scrobble_shared.db.connect import create_pool

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await create_pool(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def connection(pool: asyncpg.Pool) -> uuid.UUID:
    found: uuid.UUID = await pool.fetchval(
        "INSERT INTO connections (user_id, service) VALUES ($1, 'lastfm') RETURNING id",
        uuid.uuid4(),
    )
    return found


async def rows(
    pool: asyncpg.Pool,
    connection_id: uuid.UUID,
    n: int,
    *,
    status: str = "retrying",
    due: timedelta = timedelta(minutes=-1),
) -> list[uuid.UUID]:
    """``n`` rows of the connection, played a minute apart, due ``due`` from now."""
    ids = [uuid.uuid4() for _ in range(n)]
    for index, scrobble_id in enumerate(ids):
        await pool.execute(
            "INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, "
            "content_type, content_id, request, occurred_at, status, next_attempt_at) "
            "VALUES ($1, $2, $3, 'lastfm', $4, 'scrobble', 'track', $5, $6::jsonb, $7, $8, $9)",
            scrobble_id,
            connection_id,
            uuid.uuid4(),
            f"k-{scrobble_id}",
            uuid.uuid4(),
            json.dumps({"scrobble_id": str(scrobble_id)}),
            NOW - timedelta(hours=2) + timedelta(minutes=index),
            status,
            None if status == "queued" else datetime.now(UTC) + due,
        )
    return ids


async def test_a_round_takes_one_calls_worth_of_each_connection(pool: asyncpg.Pool) -> None:
    flood, single, later = [await connection(pool) for _ in range(3)]
    floods = await rows(pool, flood, 120, due=timedelta(minutes=-10))
    singles = await rows(pool, single, 1, due=timedelta(seconds=-1))
    await rows(pool, later, 1, due=timedelta(minutes=5))
    async with pool.acquire() as conn:
        taken = await repository.claim_due(conn, "lastfm", 100, 50)
    # Before: the 100 oldest due rows, all of the flood's; the single one waited its turn.
    assert Counter(c.connection_id for c in taken) == {flood: 50, single: 1}
    # Each connection's rows together and in order: its oldest first.
    assert [c.id for c in taken if c.connection_id == flood] == floods[:50]
    assert [c.id for c in taken if c.connection_id == single] == singles
    async with pool.acquire() as conn:
        again = await repository.claim_due(conn, "lastfm", 100, 50)
    assert [c.id for c in again] == floods[50:100]


async def test_a_round_takes_the_connections_that_waited_longest(pool: asyncpg.Pool) -> None:
    waited = [await connection(pool) for _ in range(3)]
    for n, connection_id in enumerate(waited):
        await rows(pool, connection_id, 2, due=timedelta(minutes=-10 + n))
    async with pool.acquire() as conn:
        taken = await repository.claim_due(conn, "lastfm", 2, 1)
    assert [c.connection_id for c in taken] == sorted(waited[:2])


async def test_rows_whose_sender_died_are_taken_over(pool: asyncpg.Pool) -> None:
    connection_id = await connection(pool)
    [stale] = await rows(pool, connection_id, 1, status="sending", due=timedelta(0))
    await pool.execute(
        "UPDATE scrobbles SET updated_at = now() - $2::interval WHERE id = $1",
        stale,
        repository.SENDING_LEASE + timedelta(seconds=1),
    )
    async with pool.acquire() as conn:
        taken = await repository.claim_due(conn, "lastfm", 100, 50)
    assert [c.id for c in taken] == [stale]


async def test_put_back_rows_go_behind_the_connections_waiting_work(pool: asyncpg.Pool) -> None:
    busy, idle = await connection(pool), await connection(pool)
    # busy's work waits its turn 20 s from now; a failure's backoff an hour away does not
    # count as waiting.
    await rows(pool, busy, 1, due=timedelta(seconds=20))
    await rows(pool, idle, 1, due=timedelta(hours=1))
    async with pool.acquire() as conn:
        waiting = await repository.waiting_connections(conn, "lastfm", [busy, idle])
    assert waiting == {busy}
    behind = await rows(pool, busy, 2, status="queued")
    alone = await rows(pool, idle, 1, status="queued")
    async with pool.acquire() as conn:
        await repository.put_back(conn, [*behind, *alone], "paced")
    found = {
        row["id"]: row
        for row in await pool.fetch(
            "SELECT id, status, attempts, next_attempt_at - now() AS ahead FROM scrobbles "
            "WHERE id = ANY($1::uuid[])",
            [*behind, *alone],
        )
    }
    assert all(row["status"] == "retrying" and row["attempts"] == 0 for row in found.values())
    assert all(found[i]["ahead"] > timedelta(seconds=15) for i in behind)
    assert found[alone[0]]["ahead"] <= timedelta(0)
