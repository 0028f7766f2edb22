"""Work whose pacing slot is far away: put back for its slot without spending an attempt,
except now playing, which would be stale by then and is dropped as failed."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from cryptography.fernet import Fernet

from scrobble_dispatcher import pacing, repository
from scrobble_dispatcher.clients.listenbrainz import ListenBrainzClient
from scrobble_dispatcher.delivery import Deliverer, DeliveryPolicy
from scrobble_dispatcher.transport import ClientSet
from scrobble_sandbox import running_sandbox
from scrobble_sandbox.credentials import SANDBOX_TOKEN
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import create_pool
from scrobble_shared.outbox import OutboxRelay
from tests.support.infra import Infra

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
USER = uuid.UUID("00000000-0000-4000-8000-000000000002")


@pytest_asyncio.fixture(loop_scope="session")
async def held(
    database_url: str, infra: Infra
) -> AsyncIterator[tuple[asyncpg.Pool, Deliverer, uuid.UUID]]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        pool = await create_pool(database_url)
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        http = ClientSet()
        deliverer = Deliverer(
            pool,
            CIPHER,
            {"listenbrainz": ListenBrainzClient(sb.env["LISTENBRAINZ_API_URL"])},
            {"listenbrainz": http},
            OutboxRelay(pool, producer, infra.kafka_bootstrap),
            DeliveryPolicy(3, timedelta(seconds=1), "scrobble.", {}),
        )
        connection: uuid.UUID = await pool.fetchval(
            "INSERT INTO connections (user_id, service, access_token_enc) "
            "VALUES ($1, 'listenbrainz', $2) RETURNING id",
            USER,
            CIPHER.encrypt(sb.env["SANDBOX_TOKEN"]),
        )
        try:
            yield pool, deliverer, connection
        finally:
            await http.aclose()
            await producer.stop()
            await pool.close()


async def queue(pool: asyncpg.Pool, connection: uuid.UUID, kind: str) -> uuid.UUID:
    scrobble_id, content_id = uuid.uuid4(), uuid.uuid4()
    message = {
        "scrobble_id": str(scrobble_id),
        "connection_id": str(connection),
        "user_id": str(USER),
        "service": "listenbrainz",
        "kind": kind,
        "dedupe_key": f"k-{scrobble_id}",
        "occurred_at": datetime.now(UTC).isoformat(),
        "content": {"type": "track", "id": str(content_id), "title": "T", "artists": ["A"]},
    }
    await pool.execute(
        "INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, "
        "content_type, content_id, request, occurred_at) "
        "VALUES ($1, $2, $3, 'listenbrainz', $4, $5, 'track', $6, $7::jsonb, now())",
        scrobble_id,
        connection,
        USER,
        message["dedupe_key"],
        kind,
        content_id,
        json.dumps(message),
    )
    return scrobble_id


async def test_far_slots_put_work_back_and_drop_stale_now_playing(
    held: tuple[asyncpg.Pool, Deliverer, uuid.UUID],
) -> None:
    pool, deliverer, connection = held
    until = datetime.now(UTC) + timedelta(seconds=60)
    # The key ListenBrainz work of this connection is paced on: its token's.
    account = pacing.limited_account("listenbrainz", SANDBOX_TOKEN, None)
    [key] = pacing.pacing_keys("listenbrainz", connection, "", account=account)
    async with pool.acquire() as conn:
        await pacing.hold(conn, key.key, until)
    outcomes: dict[str, dict[str, Any]] = {}
    for kind in ("now_playing", "scrobble"):
        scrobble_id = await queue(pool, connection, kind)
        async with pool.acquire() as conn:
            claimed = await repository.claim(conn, scrobble_id)
        assert claimed is not None
        assert await deliverer.deliver(claimed) == "paced"
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
