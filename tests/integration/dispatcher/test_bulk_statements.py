"""The dispatcher's statements for many rows at once, and their coalesced use by two
replicas racing for the same rows: each row claimed once, outcomes recorded per row."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from scrobble_dispatcher import repository
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import create_pool

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
USER = uuid.UUID("00000000-0000-4000-8000-0000000000b1")


@pytest_asyncio.fixture(loop_scope="session")
async def pools(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    first, second = await create_pool(database_url), await create_pool(database_url)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def connection(pool: asyncpg.Pool, token: str) -> uuid.UUID:
    found: uuid.UUID = await pool.fetchval(
        "INSERT INTO connections (user_id, service, access_token_enc) "
        "VALUES ($1, 'listenbrainz', $2) RETURNING id",
        uuid.uuid4(),
        CIPHER.encrypt(token),
    )
    return found


async def queued(pool: asyncpg.Pool, connection_id: uuid.UUID, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    for scrobble_id in ids:
        content = uuid.uuid4()
        message = {"scrobble_id": str(scrobble_id), "kind": "scrobble"}
        await pool.execute(
            "INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, "
            "content_type, content_id, request, occurred_at) "
            "VALUES ($1, $2, $3, 'listenbrainz', $4, 'scrobble', 'track', $5, $6::jsonb, now())",
            scrobble_id,
            connection_id,
            USER,
            f"bulk-{scrobble_id}",
            content,
            json.dumps(message),
        )
    return ids


async def test_claim_many_takes_due_rows_once_each_in_the_order_named(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    pool, _ = pools
    due, later, sent = await queued(pool, await connection(pool, "t"), 3)
    await pool.execute(
        "UPDATE scrobbles SET status = 'retrying', next_attempt_at = $2 WHERE id = $1",
        later,
        datetime.now(UTC) + timedelta(hours=1),
    )
    await pool.execute("UPDATE scrobbles SET status = 'sent', sent_at = now() WHERE id = $1", sent)
    async with pool.acquire() as conn:
        claimed = await repository.claim_many(conn, [later, due, sent, due, uuid.uuid4()])
    assert [c.id if c else None for c in claimed] == [None, due, None, None, None]
    row = await pool.fetchrow("SELECT status, attempts FROM scrobbles WHERE id = $1", due)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("sending", 1)
    async with pool.acquire() as conn:  # claimed: nobody else gets it inside the lease
        assert await repository.claim_many(conn, [due]) == [None]


async def test_two_replicas_claiming_coalesced_get_each_row_exactly_once(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    ids = await queued(pools[0], await connection(pools[0], "t"), 60)
    replicas = [repository.Coalesced(pool, CIPHER) for pool in pools]
    # Every row named four times: twice on each replica, all at once.
    calls = [replicas[n % 2].claim(ids[(n // 4) % 60]) for n in range(240)]
    claimed = [c for c in await asyncio.gather(*calls) if c is not None]
    assert sorted(c.id for c in claimed) == sorted(ids)


async def test_outcomes_many_at_once_land_on_their_own_rows(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    pool, _ = pools
    ids = await queued(pool, await connection(pool, "t"), 4)
    db = repository.Coalesced(pool, CIPHER)
    await asyncio.gather(
        db.sent((ids[0], 200)),
        db.sent((ids[1], None)),
        db.failed((ids[2], "now playing skipped", None)),
        db.failed((ids[3], "re\x00fused", 400)),  # a NUL quoted from an answer
    )
    rows = await pool.fetch(
        "SELECT id, status, last_http_status, last_error, sent_at IS NOT NULL AS has_sent_at "
        "FROM scrobbles WHERE id = ANY($1::uuid[])",
        ids,
    )
    found = {r["id"]: tuple(r)[1:] for r in rows}
    assert [found[i] for i in ids] == [
        ("sent", 200, None, True),
        ("sent", None, None, True),
        ("failed", None, "now playing skipped", False),
        ("failed", 400, "refused", False),
    ]


async def test_connection_states_per_id_with_tokens_decrypted(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    pool, _ = pools
    first, second = await connection(pool, "token-1"), await connection(pool, "token-2")
    await pool.execute("UPDATE connections SET enabled = false WHERE id = $1", second)
    async with pool.acquire() as conn:
        states = await repository.connection_states(
            conn, CIPHER, [second, uuid.uuid4(), first, second]
        )
    assert [(s.token, s.enabled) if s else None for s in states] == [
        ("token-2", False),
        None,
        ("token-1", True),
        ("token-2", False),
    ]
    async with pool.acquire() as conn:
        assert states[2] == await repository.connection_state(conn, CIPHER, first)
