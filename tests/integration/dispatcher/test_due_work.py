"""The retry poller of two replicas against a backlog of due work on a service paced one
call a second (Simkl's app limit): each piece of work goes out once, and the backlog does
not hold up another service's due work.

Found by the chaos harness (bench/chaos): the poller used to claim a hundred due rows at
once and send them one by one; past the claim's lease (2 minutes) the rows still waiting
their turn were claimed again by the other replica, and both sent them: the same history
entry twice at Simkl.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from cryptography.fernet import Fernet

from scrobble_dispatcher import repository
from scrobble_dispatcher.consumer import poll_due_work
from scrobble_dispatcher.decide import DeliveryPolicy
from scrobble_dispatcher.delivery import Deliverer
from scrobble_dispatcher.transport import ClientSet
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import create_pool
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.trackers.http import AppCredentials
from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient
from scrobble_shared.trackers.simkl.client import SimklClient
from tests.support.infra import Infra

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
BACKLOG = 16  # Simkl history adds, one a second at most: longer than the lease below
LEASE = timedelta(seconds=8)  # longer than a delivery's longest wait for its slot (5 s)


@dataclass
class Replicas:
    pool: asyncpg.Pool
    sb: Sandbox
    deliverers: list[Deliverer]


@pytest_asyncio.fixture(loop_scope="session")
async def replicas(database_url: str, infra: Infra) -> AsyncIterator[Replicas]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        pool = await create_pool(database_url, max_size=20)
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        clients = [ClientSet(4) for _ in range(2)]
        app = AppCredentials(sb.env["SIMKL_CLIENT_ID"], sb.env["SIMKL_CLIENT_SECRET"])
        deliverers = [
            Deliverer(
                pool,
                CIPHER,
                {
                    "simkl": SimklClient(sb.env["SIMKL_API_URL"], app),
                    "listenbrainz": ListenBrainzClient(sb.env["LISTENBRAINZ_API_URL"]),
                },
                {"simkl": http, "listenbrainz": http},
                OutboxRelay(pool, producer, infra.kafka_bootstrap),
                DeliveryPolicy(3, timedelta(seconds=1), "scrobble.", {"simkl": app.client_id}),
            )
            for http in clients
        ]
        try:
            yield Replicas(pool, sb, deliverers)
        finally:
            for http in clients:
                await http.aclose()
            await producer.stop()
            await pool.close()


async def due_work(pool: asyncpg.Pool, service: str, kind: str, content: dict[str, object]) -> str:
    """A connection of a new user and a piece of work of it, due for a retry now."""
    user = uuid.uuid4()
    connection: uuid.UUID = await pool.fetchval(
        "INSERT INTO connections (user_id, service, access_token_enc) "
        "VALUES ($1, $2, $3) RETURNING id",
        user,
        service,
        CIPHER.encrypt("5a4db0c5-5a4d-4b0c-8000-000000000001"),  # the sandbox's own user
    )
    scrobble_id = uuid.uuid4()
    occurred = datetime.now(UTC) - timedelta(minutes=5)
    message = {
        "scrobble_id": str(scrobble_id),
        "connection_id": str(connection),
        "user_id": str(user),
        "service": service,
        "kind": kind,
        "dedupe_key": f"k-{scrobble_id}",
        "occurred_at": occurred.isoformat(),
        "content": content,
    }
    await pool.execute(
        "INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, "
        "content_type, content_id, request, occurred_at, status, attempts, next_attempt_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, 'retrying', 1, now())",
        scrobble_id,
        connection,
        user,
        service,
        message["dedupe_key"],
        kind,
        content["type"],
        uuid.UUID(str(content["id"])),
        json.dumps(message),
        occurred,
    )
    return str(scrobble_id)


def film(n: int) -> dict[str, object]:
    return {
        "type": "movie",
        "id": str(uuid.uuid4()),
        "title": f"Backlog Film {n}",
        "year": 2001,
        "external_ids": {"imdb": f"tt77{n:06d}"},
    }


async def run_pollers(deliverers: list[Deliverer], pool: asyncpg.Pool) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(poll_due_work(pool, d, ["simkl", "listenbrainz"])) for d in deliverers
    ]


async def stop(pollers: list[asyncio.Task[None]]) -> None:
    for task in pollers:
        task.cancel()
    for task in pollers:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def left(pool: asyncpg.Pool, service: str) -> int:
    found: int = await pool.fetchval(
        "SELECT count(*) FROM scrobbles WHERE service = $1 AND status <> 'sent'", service
    )
    return found


async def test_two_pollers_send_a_backlog_paced_past_the_lease_once(
    replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, sb = replicas.pool, replicas.sb
    monkeypatch.setattr(repository, "SENDING_LEASE", LEASE)
    films = [film(n) for n in range(BACKLOG)]
    for item in films:
        await due_work(pool, "simkl", "watched", item)
    pollers = await run_pollers(replicas.deliverers, pool)
    try:
        for _ in range(90):
            if await left(pool, "simkl") == 0:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(LEASE.total_seconds() + 6)  # a late second send would land now
    finally:
        await stop(pollers)
    wanted = sorted(str(item["title"]) for item in films)
    titles = [str(event.item.get("title")) for event in sb.simkl.state.history]
    assert sorted(t for t in titles if t in wanted) == wanted


async def test_a_paced_backlog_does_not_hold_up_another_service(
    replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = replicas.pool
    for n in range(BACKLOG):
        await due_work(pool, "simkl", "watched", film(100 + n))
    listen = await due_work(
        pool,
        "listenbrainz",
        "scrobble",
        {"type": "track", "id": str(uuid.uuid4()), "title": "Meanwhile", "artists": ["A"]},
    )
    pollers = await run_pollers(replicas.deliverers[:1], pool)  # one replica: one poller
    try:
        sent_after = None
        for second in range(1, 9):
            await asyncio.sleep(1)
            status = await pool.fetchval("SELECT status FROM scrobbles WHERE id = $1::uuid", listen)
            if status == "sent":
                sent_after = second
                break
        backlog = await left(pool, "simkl")
    finally:
        await stop(pollers)
    assert sent_after is not None, "the listen waited behind Simkl's backlog"
    assert backlog > 0, "the backlog was gone before the listen: the test proves nothing"
    print(f"the listen went out after {sent_after} s, {backlog} Simkl adds still waiting")
