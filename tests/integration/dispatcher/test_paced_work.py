"""Work whose pacing slot is far away: put back for its slot without spending an attempt,
except now playing, which would be stale by then and is dropped as failed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from scrobble_dispatcher import pacing
from scrobble_dispatcher.delivery import Deliverer
from scrobble_sandbox.credentials import SANDBOX_TOKEN
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.trackers import registry
from tests.support.delivery import deliver_once, listenbrainz_deliverer, queue_work
from tests.support.infra import Infra

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
USER = uuid.UUID("00000000-0000-4000-8000-000000000002")


@pytest_asyncio.fixture(loop_scope="session")
async def held(
    database_url: str, infra: Infra
) -> AsyncIterator[tuple[asyncpg.Pool, Deliverer, uuid.UUID]]:
    async with listenbrainz_deliverer(database_url, infra, CIPHER, USER, timedelta(seconds=1)) as (
        pool,
        deliverer,
        _,
        connection,
    ):
        yield pool, deliverer, connection


async def queue(pool: asyncpg.Pool, connection: uuid.UUID, kind: str) -> uuid.UUID:
    track = {"type": "track", "title": "T", "artists": ["A"]}
    return await queue_work(pool, connection, USER, "listenbrainz", kind, track)


async def test_far_slots_put_work_back_and_drop_stale_now_playing(
    held: tuple[asyncpg.Pool, Deliverer, uuid.UUID],
) -> None:
    pool, deliverer, connection = held
    until = datetime.now(UTC) + timedelta(seconds=60)
    # The key ListenBrainz work of this connection is paced on: its token's.
    account = registry.limited_account("listenbrainz", SANDBOX_TOKEN, None)
    [key] = registry.pacing_keys("listenbrainz", connection, "", account=account)
    async with pool.acquire() as conn:
        await pacing.hold(conn, key.key, until)
    outcomes: dict[str, dict[str, Any]] = {}
    for kind in ("now_playing", "scrobble"):
        scrobble_id = await queue(pool, connection, kind)
        assert await deliver_once(pool, deliverer, scrobble_id) == "paced"
        row = await pool.fetchrow(
            "SELECT status, attempts, next_attempt_at, last_error FROM scrobbles WHERE id = $1",
            scrobble_id,
        )
        assert row is not None
        outcomes[kind] = dict(row)
    assert outcomes["now_playing"]["status"] == "failed"
    assert "rate limit" in outcomes["now_playing"]["last_error"]
    assert outcomes["scrobble"]["status"] == "retrying"
    assert outcomes["scrobble"]["attempts"] == 0  # nothing was sent
    assert outcomes["scrobble"]["next_attempt_at"] >= until
