"""Issue 20, point 2: pacing keyed by what the service limits. ListenBrainz limits per
token, Trakt per user account: two connections holding one token, or one account connected
by two of our users, are paced as one. Deliveries run in process against the sandbox's
fakes, which limit as the services do (Trakt: one write a second per account, whatever the
token; ListenBrainz: per token)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from scrobble_dispatcher.decide import DeliveryPolicy
from scrobble_dispatcher.delivery import Deliverer
from scrobble_dispatcher.transport import ClientSet
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.trackers.http import AppCredentials
from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient
from scrobble_shared.trackers.trakt.client import TraktClient
from tests.support.delivery import in_process_deliverer
from tests.support.infra import Infra

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())


@dataclass
class Setup:
    pool: asyncpg.Pool
    deliverer: Deliverer
    sandbox: Sandbox


@pytest_asyncio.fixture(loop_scope="session")
async def setup(database_url: str, infra: Infra) -> AsyncIterator[Setup]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        trakt = TraktClient(sb.env["TRAKT_API_URL"], AppCredentials(sb.env["TRAKT_CLIENT_ID"]))
        async with in_process_deliverer(
            database_url,
            infra,
            CIPHER,
            {"trakt": trakt, "listenbrainz": ListenBrainzClient(sb.env["LISTENBRAINZ_API_URL"])},
            DeliveryPolicy(3, timedelta(minutes=5), "scrobble.", {"trakt": "trakt-app"}),
            http={"trakt": ClientSet(), "listenbrainz": ClientSet()},
        ) as (pool, deliverer):
            yield Setup(pool, deliverer, sb)


async def connect(pool: asyncpg.Pool, service: str, token: str, name: str | None) -> uuid.UUID:
    """A connection of a user of its own (the account name as the connect flow stores it)."""
    connection: uuid.UUID = await pool.fetchval(
        "INSERT INTO connections (user_id, service, access_token_enc, external_user_name) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        uuid.uuid4(),
        service,
        CIPHER.encrypt(token),
        name,
    )
    return connection


async def queue(pool: asyncpg.Pool, connection: uuid.UUID, service: str) -> uuid.UUID:
    scrobble_id, content_id = uuid.uuid4(), uuid.uuid4()
    user = await pool.fetchval("SELECT user_id FROM connections WHERE id = $1", connection)
    # A movie of its own per work: the same one twice would be Trakt's duplicate (409).
    tmdb = uuid.uuid4().int % 1_000_000
    content: dict[str, Any] = {"type": "movie", "title": f"Movie {tmdb}", "year": 1995}
    if service == "listenbrainz":
        content = {"type": "track", "title": "T", "artists": ["A"]}
    message = {
        "scrobble_id": str(scrobble_id),
        "connection_id": str(connection),
        "user_id": str(user),
        "service": service,
        "kind": "scrobble",
        "dedupe_key": f"k-{scrobble_id}",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=10)).isoformat(),
        "content": {"id": str(content_id), **content, "external_ids": {"tmdb": tmdb}},
        "progress_percent": 95.0,
    }
    await pool.execute(
        "INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, "
        "content_type, content_id, request, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5, 'scrobble', $6, $7, $8::jsonb, now())",
        scrobble_id,
        connection,
        user,
        service,
        message["dedupe_key"],
        content["type"],
        content_id,
        json.dumps(message),
    )
    return scrobble_id


async def deliver(deliverer: Deliverer, scrobble_id: uuid.UUID) -> str:
    claimed = await deliverer.claim(scrobble_id)
    assert claimed is not None
    return await deliverer.deliver(claimed)


async def test_one_trakt_account_connected_twice_is_paced_as_one(setup: Setup) -> None:
    pool, sb = setup.pool, setup.sandbox
    # Two of our users linked the same Trakt account: two grants, two tokens, one account.
    grants = [{"name": "shared", "token": "trakt-grant-one-0001"}]
    grants.append({"name": "shared", "token": "trakt-grant-two-0002"})
    sb.trakt.seed("users", grants)
    first = await connect(pool, "trakt", grants[0]["token"], "shared")
    second = await connect(pool, "trakt", grants[1]["token"], "Shared")
    works = [await queue(pool, first, "trakt"), await queue(pool, second, "trakt")]

    outcomes = await asyncio.gather(*(deliver(setup.deliverer, w) for w in works))

    calls = sb.trakt.requests("/scrobble/stop")
    print(
        "\nTrakt, one account connected twice: "
        f"answers {[r.status for r in calls]}, {calls[-1].at - calls[0].at:.2f} s apart"
    )
    # One write a second per account: the second waited for the first, and Trakt refused
    # neither (before: both went at once, and the account's limit refused one with 429).
    assert [r.status for r in calls] == [201, 201]
    assert outcomes == ["done", "done"]
    assert calls[1].at - calls[0].at >= 1.0


async def test_two_connections_holding_one_listenbrainz_token_wait_together(
    setup: Setup,
) -> None:
    pool, sb = setup.pool, setup.sandbox
    token = "listenbrainz-shared-token-0001"
    sb.listenbrainz.seed("users", [{"name": "shared", "token": token}])
    first = await connect(pool, "listenbrainz", token, None)
    second = await connect(pool, "listenbrainz", token, None)
    sb.listenbrainz.faults.rate_limit(1, retry_after=30, path_prefix="/submit-listens")

    limited = await deliver(setup.deliverer, await queue(pool, first, "listenbrainz"))
    held = await queue(pool, second, "listenbrainz")
    outcome = await deliver(setup.deliverer, held)

    # The token was told to wait 30 s: so is the other connection holding it, which sends
    # nothing meanwhile (before: it had a key of its own and went at once).
    assert limited == "rate_limited"
    assert outcome == "paced"
    assert len(sb.listenbrainz.requests("/submit-listens")) == 1
    row = await pool.fetchrow(
        "SELECT status, next_attempt_at - now() AS ahead FROM scrobbles WHERE id = $1", held
    )
    assert row is not None
    assert row["status"] == "retrying"
    assert row["ahead"] > timedelta(seconds=25)
