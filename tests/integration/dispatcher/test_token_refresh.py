"""Trakt token refresh against real Postgres and the sandbox's Trakt fake (single-use refresh
tokens): the Deliverer in-process, one claimed row at a time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from scrobble_dispatcher import repository
from scrobble_dispatcher.delivery import Deliverer
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db import Conn
from scrobble_shared.trackers.refresh import INTERRUPTED_REASON, NewTokens
from tests.support.delivery import deliver_once, queue_work, trakt_deliverer
from tests.support.infra import Infra

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
USER = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest_asyncio.fixture(loop_scope="session")
async def sb() -> AsyncIterator[Sandbox]:
    async with running_sandbox(host="127.0.0.1", port=0) as sandbox:
        sandbox.disable_rate_limits()
        yield sandbox


@dataclass
class Setup:
    pool: asyncpg.Pool
    deliverer: Deliverer
    sb: Sandbox

    async def connect(self, access: str, refresh: str | None, expires_at: datetime) -> uuid.UUID:
        connection_id: uuid.UUID = await self.pool.fetchval(
            "INSERT INTO connections (user_id, service, access_token_enc, refresh_token_enc, "
            "token_expires_at) VALUES ($1, 'trakt', $2, $3, $4) RETURNING id",
            USER,
            CIPHER.encrypt(access),
            None if refresh is None else CIPHER.encrypt(refresh),
            expires_at,
        )
        return connection_id

    async def queue(self, connection_id: uuid.UUID) -> uuid.UUID:
        movie = {"type": "movie", "title": "Heat", "year": 1995}
        return await queue_work(
            self.pool, connection_id, USER, "trakt", "scrobble", movie, progress_percent=95.0
        )

    async def attempt(self, scrobble_id: uuid.UUID) -> str:
        return await deliver_once(self.pool, self.deliverer, scrobble_id)

    async def connection(self, connection_id: uuid.UUID) -> dict[str, Any]:
        row = await self.pool.fetchrow("SELECT * FROM connections WHERE id = $1", connection_id)
        assert row is not None
        return dict(row)

    async def scrobble(self, scrobble_id: uuid.UUID) -> dict[str, Any]:
        row = await self.pool.fetchrow("SELECT * FROM scrobbles WHERE id = $1", scrobble_id)
        assert row is not None
        return dict(row)

    def refreshes(self) -> int:
        return len(self.sb.trakt.requests("/oauth/token"))

    def pair(self) -> dict[str, Any]:
        """A live access/refresh pair of the sandbox user, as the code flow would give."""
        issued: dict[str, Any] = self.sb.trakt.oauth.issue_pair("sandbox")
        return issued


@pytest_asyncio.fixture(loop_scope="session")
async def setup(database_url: str, infra: Infra, sb: Sandbox) -> AsyncIterator[Setup]:
    sb.reset()
    sb.disable_rate_limits()
    async with trakt_deliverer(database_url, infra, CIPHER, sb) as (pool, deliverer):
        yield Setup(pool, deliverer, sb)


LATER = datetime.now(UTC) + timedelta(days=7)


@pytest.mark.parametrize("how", ["rejected", "expired"])
async def test_a_refused_or_expired_token_is_refreshed_once_and_persisted_first(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pair = setup.pair()
    if how == "rejected":  # Trakt answers 401 to the stored token
        setup.sb.trakt.expire_token(pair["access_token"])
        connection_id = await setup.connect(pair["access_token"], pair["refresh_token"], LATER)
    else:  # token_expires_at has passed: refreshed before any call
        past = datetime.now(UTC) - timedelta(minutes=1)
        connection_id = await setup.connect(pair["access_token"], pair["refresh_token"], past)
    scrobble_id = await setup.queue(connection_id)

    calls_when_persisted: list[int] = []
    persist = repository.persist_refreshed_tokens

    async def watched_persist(
        conn: Conn, cipher: TokenCipher, cid: uuid.UUID, version: int, new: NewTokens
    ) -> int | None:
        calls_when_persisted.append(len(setup.sb.trakt.requests("/scrobble/")))
        return await persist(conn, cipher, cid, version, new)

    monkeypatch.setattr(repository, "persist_refreshed_tokens", watched_persist)
    assert await setup.attempt(scrobble_id) == "done"

    assert setup.refreshes() == 1
    statuses = [r.status for r in setup.sb.trakt.requests("/scrobble/")]
    assert statuses == ([401, 201] if how == "rejected" else [201])
    # The pair was written before the call that used it.
    assert calls_when_persisted == [1 if how == "rejected" else 0]
    row = await setup.connection(connection_id)
    new_access = CIPHER.decrypt(row["access_token_enc"])
    new_refresh = CIPHER.decrypt(row["refresh_token_enc"])
    assert new_access != pair["access_token"]
    assert new_refresh != pair["refresh_token"]
    assert new_access.encode() not in row["access_token_enc"]  # stored encrypted
    assert new_refresh.encode() not in row["refresh_token_enc"]
    assert row["token_version"] == 1
    assert row["status"] == "active"
    assert row["refresh_started_at"] is None
    assert row["refresh_from_version"] is None
    assert row["token_expires_at"] > datetime.now(UTC) + timedelta(days=6)
    assert setup.sb.trakt.state.access.user_for(new_access) == "sandbox"
    assert (await setup.scrobble(scrobble_id))["status"] == "sent"


class ProcessDied(BaseException):
    """Stands for a kill -9 in the middle of a delivery."""


async def test_a_crash_between_refresh_and_persist_is_not_silent(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = setup.pair()
    setup.sb.trakt.expire_token(pair["access_token"])
    connection_id = await setup.connect(pair["access_token"], pair["refresh_token"], LATER)
    scrobble_id = await setup.queue(connection_id)

    async def crash(*_args: object) -> int | None:
        # The process dies here: nothing of it runs after this point, so no handler of
        # an Exception (a BaseException stands for the kill).
        raise ProcessDied("process died after the token endpoint answered")

    monkeypatch.setattr(repository, "persist_refreshed_tokens", crash)
    with pytest.raises(ProcessDied):
        await setup.attempt(scrobble_id)
    monkeypatch.undo()
    assert setup.refreshes() == 1  # Trakt spent the refresh token; the new pair is lost
    row = await setup.connection(connection_id)
    assert row["refresh_started_at"] is not None
    assert row["refresh_from_version"] == 0
    assert row["token_version"] == 0
    assert row["status"] == "active"

    # The row's sending lease runs out and another replica takes it while the refresh mark is
    # still fresh: it waits instead of spending the refresh token again.
    await setup.pool.execute(
        "UPDATE scrobbles SET updated_at = now() - interval '1 hour' WHERE id = $1", scrobble_id
    )
    assert await setup.attempt(scrobble_id) == "waiting"
    assert setup.refreshes() == 1
    assert (await setup.scrobble(scrobble_id))["last_error"] == "a token refresh is in progress"

    # Later, the mark is older than its lease: the interrupted refresh is found.
    await setup.pool.execute(
        "UPDATE connections SET refresh_started_at = now() - interval '1 hour' WHERE id = $1",
        connection_id,
    )
    await setup.pool.execute(
        "UPDATE scrobbles SET next_attempt_at = now() WHERE id = $1", scrobble_id
    )
    assert await setup.attempt(scrobble_id) == "waiting"
    assert setup.refreshes() == 2
    assert setup.sb.trakt.requests("/oauth/token")[-1].status == 400  # invalid_grant
    row = await setup.connection(connection_id)
    assert row["status"] == "needs_reconnect"
    assert row["status_reason"] == INTERRUPTED_REASON
    assert row["refresh_started_at"] is None
    work = await setup.scrobble(scrobble_id)
    assert work["status"] == "retrying"
    assert work["last_error"] == INTERRUPTED_REASON
    assert work["next_attempt_at"] > datetime.now(UTC) + timedelta(minutes=50)
    # Only the first (401) call reached the scrobble endpoint.
    assert [r.status for r in setup.sb.trakt.requests("/scrobble/")] == [401]


async def test_a_refused_refresh_needs_reconnect_and_the_work_waits(setup: Setup) -> None:
    pair = setup.pair()
    setup.sb.trakt.expire_token(pair["access_token"])
    connection_id = await setup.connect(pair["access_token"], "tr_unknown-to-trakt", LATER)
    scrobble_id = await setup.queue(connection_id)

    assert await setup.attempt(scrobble_id) == "waiting"

    assert setup.refreshes() == 1
    row = await setup.connection(connection_id)
    assert row["status"] == "needs_reconnect"
    assert row["status_reason"] == (
        "Trakt refused the token refresh (invalid_grant); reconnect Trakt"
    )
    assert row["refresh_started_at"] is None
    assert row["token_version"] == 0
    work = await setup.scrobble(scrobble_id)
    assert work["status"] == "retrying"
    assert work["attempts"] == 0
    assert work["next_attempt_at"] > datetime.now(UTC) + timedelta(minutes=50)
    # Due again, it still waits for the reconnect without calling anyone.
    await setup.pool.execute(
        "UPDATE scrobbles SET next_attempt_at = now() WHERE id = $1", scrobble_id
    )
    assert await setup.attempt(scrobble_id) == "waiting"
    assert setup.refreshes() == 1
    assert len(setup.sb.trakt.requests("/scrobble/")) == 1
