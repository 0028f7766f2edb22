"""A Deliverer in this process, wired as the dispatcher wires one: a real pool, a real Kafka
producer behind its outbox relay, and HTTP client sets, all closed when the block ends.

For the integration tests that claim and deliver one row at a time; the dispatcher as a
process is started by ``tests.support.services``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from scrobble_dispatcher import repository
from scrobble_dispatcher.decide import DeliveryPolicy
from scrobble_dispatcher.delivery import Deliverer
from scrobble_dispatcher.transport import ClientSet
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import create_pool
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.trackers.http import AppCredentials, ServiceClient
from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient
from scrobble_shared.trackers.refresh import RefreshConfig
from scrobble_shared.trackers.trakt.client import TraktClient
from tests.support.infra import Infra


@asynccontextmanager
async def in_process_deliverer(
    database_url: str,
    infra: Infra,
    cipher: TokenCipher,
    clients: dict[str, ServiceClient],
    policy: DeliveryPolicy,
    *,
    http: Mapping[str, ClientSet] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[asyncpg.Pool, Deliverer]]:
    """The pool and the Deliverer of ``clients``. ``http``: the client sets by service (one
    ``ClientSet()`` shared by all when not given); ``options`` go to the Deliverer as they
    are (``refresh``, ``rechecks``, ...)."""
    pool = await create_pool(database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    client_sets = dict(http) if http is not None else dict.fromkeys(clients, ClientSet())
    relay = OutboxRelay(pool, producer, infra.kafka_bootstrap)
    try:
        yield pool, Deliverer(pool, cipher, clients, client_sets, relay, policy, **options)
    finally:
        for client_set in {id(c): c for c in client_sets.values()}.values():
            await client_set.aclose()
        await producer.stop()
        await pool.close()


@asynccontextmanager
async def listenbrainz_deliverer(
    database_url: str, infra: Infra, cipher: TokenCipher, user: uuid.UUID, backoff: timedelta
) -> AsyncIterator[tuple[asyncpg.Pool, Deliverer, Sandbox, uuid.UUID]]:
    """A Deliverer of ListenBrainz work against a sandbox of its own (retries ``backoff``
    apart), and a connection of ``user`` holding the sandbox user's token."""
    async with (
        running_sandbox(host="127.0.0.1", port=0) as sb,
        in_process_deliverer(
            database_url,
            infra,
            cipher,
            {"listenbrainz": ListenBrainzClient(sb.env["LISTENBRAINZ_API_URL"])},
            DeliveryPolicy(3, backoff, "scrobble.", {}),
        ) as (pool, deliverer),
    ):
        connection: uuid.UUID = await pool.fetchval(
            "INSERT INTO connections (user_id, service, access_token_enc) "
            "VALUES ($1, 'listenbrainz', $2) RETURNING id",
            user,
            cipher.encrypt(sb.env["SANDBOX_TOKEN"]),
        )
        yield pool, deliverer, sb, connection


@asynccontextmanager
async def trakt_deliverer(
    database_url: str, infra: Infra, cipher: TokenCipher, sb: Sandbox
) -> AsyncIterator[tuple[asyncpg.Pool, Deliverer]]:
    """A Deliverer of Trakt work against ``sb``'s Trakt fake, refreshing tokens there too
    (retries a second apart)."""
    env = sb.env
    app = AppCredentials(env["TRAKT_CLIENT_ID"], env["TRAKT_CLIENT_SECRET"])
    async with in_process_deliverer(
        database_url,
        infra,
        cipher,
        {"trakt": TraktClient(env["TRAKT_API_URL"], app)},
        DeliveryPolicy(3, timedelta(seconds=1), "scrobble.", {"trakt": app.client_id}),
        refresh={"trakt": RefreshConfig.trakt(env["TRAKT_AUTH_URL"], app)},
    ) as held:
        yield held


async def queue_work(
    pool: asyncpg.Pool,
    connection_id: uuid.UUID,
    user: uuid.UUID,
    service: str,
    kind: str,
    content: dict[str, Any],
    *,
    occurred_at: datetime | None = None,
    progress_percent: float | None = None,
) -> uuid.UUID:
    """A row of work as ingest writes one, due now: its message carries ``content`` (with an
    ``id`` of its own when it has none) and, when given, ``progress_percent``."""
    scrobble_id = uuid.uuid4()
    body = {"id": str(uuid.uuid4()), **content}
    occurred = occurred_at or datetime.now(UTC)
    message: dict[str, Any] = {
        "scrobble_id": str(scrobble_id),
        "connection_id": str(connection_id),
        "user_id": str(user),
        "service": service,
        "kind": kind,
        "dedupe_key": f"k-{scrobble_id}",
        "occurred_at": occurred.isoformat(),
        "content": body,
    }
    if progress_percent is not None:
        message["progress_percent"] = progress_percent
    await pool.execute(
        "INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, "
        "content_type, content_id, request, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)",
        scrobble_id,
        connection_id,
        user,
        service,
        message["dedupe_key"],
        kind,
        body["type"],
        uuid.UUID(body["id"]),
        json.dumps(message),
        occurred,
    )
    return scrobble_id


async def claim(pool: asyncpg.Pool, scrobble_id: uuid.UUID) -> repository.Claimed:
    """Claim the row as the dispatcher does; it must be claimable."""
    async with pool.acquire() as conn:
        claimed = await repository.claim(conn, scrobble_id)
    assert claimed is not None
    return claimed


async def deliver_once(pool: asyncpg.Pool, deliverer: Deliverer, scrobble_id: uuid.UUID) -> str:
    """Claim the row and deliver it once; the outcome label."""
    return await deliverer.deliver(await claim(pool, scrobble_id))
