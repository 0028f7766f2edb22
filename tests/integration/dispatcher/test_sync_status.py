"""A connection's ``last_sync_at`` / ``last_sync_status`` follow its deliveries (issue 20,
point 5): "ok" after a send, "retrying: <reason>" after a call that will be tried again,
"needs reconnect: <reason>" once its tokens are refused, so a connection's card can say
when it last worked. Cheap: a delivery that changes nothing (still ok, less than a minute
since the time written) does not rewrite the connection row (its xmin stays).

The Deliverer in-process against real Postgres and the sandbox's Trakt fake; the
dispatcher as a process is checked in test_delivery.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from scrobble_dispatcher.delivery import Deliverer
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from tests.support.delivery import deliver_once, queue_work, trakt_deliverer
from tests.support.infra import Infra

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
USER = uuid.UUID("00000000-0000-4000-8000-000000000002")
SENT = ("done", "already_done")


@dataclass
class Setup:
    pool: asyncpg.Pool
    deliverer: Deliverer
    sb: Sandbox

    async def connect(self) -> uuid.UUID:
        """A Trakt connection with the fake's token and no refresh token."""
        connection_id: uuid.UUID = await self.pool.fetchval(
            "INSERT INTO connections (user_id, service, access_token_enc) "
            "VALUES ($1, 'trakt', $2) RETURNING id",
            USER,
            CIPHER.encrypt(self.sb.env["SANDBOX_TOKEN"]),
        )
        return connection_id

    async def deliver(self, connection_id: uuid.UUID) -> str:
        """Queue one movie scrobble and deliver it once; the outcome label ("done" and
        "already_done", Trakt's 409 for the same movie again, are both sent)."""
        movie = {"type": "movie", "title": "Heat", "year": 1995}
        scrobble_id = await queue_work(
            self.pool, connection_id, USER, "trakt", "scrobble", movie, progress_percent=95.0
        )
        return await self.again(scrobble_id)

    async def again(self, scrobble_id: uuid.UUID) -> str:
        await self.pool.execute(
            "UPDATE scrobbles SET next_attempt_at = now() WHERE id = $1", scrobble_id
        )
        return await deliver_once(self.pool, self.deliverer, scrobble_id)

    async def sync(self, connection_id: uuid.UUID) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "SELECT last_sync_at, last_sync_status, status, xmin::text AS version "
            "FROM connections WHERE id = $1",
            connection_id,
        )
        assert row is not None
        return dict(row)


@pytest_asyncio.fixture(loop_scope="session")
async def setup(database_url: str, infra: Infra) -> AsyncIterator[Setup]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        sb.disable_rate_limits()
        async with trakt_deliverer(database_url, infra, CIPHER, sb) as (pool, deliverer):
            yield Setup(pool, deliverer, sb)


async def test_the_connection_says_when_its_last_delivery_was_and_how_it_went(
    setup: Setup,
) -> None:
    connection = await setup.connect()
    before = await setup.sync(connection)
    assert (before["last_sync_at"], before["last_sync_status"]) == (None, "")

    setup.sb.trakt.faults.error(status=503, path_prefix="/scrobble/")
    started = datetime.now(UTC)
    assert await setup.deliver(connection) == "retry"
    retrying = await setup.sync(connection)
    [row] = await setup.pool.fetch(
        "SELECT id, last_error FROM scrobbles WHERE connection_id = $1", connection
    )
    assert retrying["last_sync_status"] == f"retrying: {row['last_error']}"
    assert "503" in retrying["last_sync_status"]
    assert retrying["last_sync_at"] >= started

    assert await setup.again(row["id"]) in SENT
    ok = await setup.sync(connection)
    assert ok["last_sync_status"] == "ok"
    assert ok["last_sync_at"] > retrying["last_sync_at"]

    # Still ok, less than a minute on: nothing is written to the connection.
    for _ in range(3):
        assert await setup.deliver(connection) in SENT
    unchanged = await setup.sync(connection)
    assert unchanged == ok

    # A minute on, the next send writes the time again.
    await setup.pool.execute(
        "UPDATE connections SET last_sync_at = last_sync_at - interval '61 seconds' WHERE id = $1",
        connection,
    )
    assert await setup.deliver(connection) in SENT
    later = await setup.sync(connection)
    assert later["last_sync_status"] == "ok"
    assert later["last_sync_at"] > ok["last_sync_at"]

    # Trakt refuses the token and there is no refresh token: the user must reconnect.
    assert setup.sb.trakt.state.access.expire(setup.sb.env["SANDBOX_TOKEN"])
    assert await setup.deliver(connection) == "waiting"
    refused = await setup.sync(connection)
    assert refused["status"] == "needs_reconnect"
    assert refused["last_sync_status"] == (
        "needs reconnect: Trakt access token expired and there is no refresh token"
    )
    assert refused["last_sync_at"] > later["last_sync_at"]
