"""The shared pool skips asyncpg's reset query on release (connect.py says why); what a
release must still undo, a transaction left open, is undone. And no statement on it waits
for ever: one without an answer raises TimeoutError (transient) within the bound."""

from __future__ import annotations

import pytest

from scrobble_shared.db import connect
from scrobble_shared.db.connect import create_pool

pytestmark = pytest.mark.integration


async def test_a_transaction_left_open_is_rolled_back_on_release(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS pool_probe (n int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
        async with pool.acquire() as conn:  # the same connection: max_size=1
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM pool_probe") == 0
    finally:
        await pool.close()


async def test_a_statement_without_an_answer_times_out(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pg_sleep stands for a statement whose answer never comes (Postgres killed under it);
    # the bound is shortened so the test does not wait a minute.
    monkeypatch.setattr(connect, "QUERY_TIMEOUT_S", 0.5)
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        with pytest.raises(TimeoutError):
            await pool.fetchval("SELECT pg_sleep(30)")
        # The pool goes on: the next statement gets a connection and an answer.
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
