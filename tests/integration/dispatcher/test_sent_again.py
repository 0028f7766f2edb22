"""Work sent again after an attempt whose answer never arrived (the fake took the call,
then broke its answer off): a history add at Trakt and Simkl and a Last.fm scrobble are
each held once, because the dispatcher asks before it sends again.

Found by the chaos harness (bench/chaos, "fake: drops mid-answer" and cut connections):
Trakt and Simkl keep every history add, Last.fm every scrobble, and the retry added them
a second time.
"""

from __future__ import annotations

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
from scrobble_dispatcher.main import build_clients, build_rechecks
from scrobble_dispatcher.transport import ClientSet
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.settings import Settings
from tests.support.delivery import deliver_once, in_process_deliverer, queue_work
from tests.support.infra import Infra

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
USER = uuid.UUID("00000000-0000-4000-8000-000000000019")
SERVICES = ("trakt", "simkl", "lastfm")


@dataclass
class Setup:
    pool: asyncpg.Pool
    sb: Sandbox
    deliverer: Deliverer
    connections: dict[str, uuid.UUID]


@pytest_asyncio.fixture(loop_scope="session")
async def setup(database_url: str, infra: Infra) -> AsyncIterator[Setup]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        sb.disable_rate_limits()
        settings = Settings.model_validate(
            {k.lower(): v for k, v in sb.env.items() if not k.startswith("SANDBOX")}
        )
        async with in_process_deliverer(
            database_url,
            infra,
            CIPHER,
            build_clients(settings, list(SERVICES)),
            DeliveryPolicy(3, timedelta(seconds=1), "scrobble.", {}),
            http=dict.fromkeys(SERVICES, ClientSet(4)),
            rechecks=build_rechecks(settings, list(SERVICES)),
        ) as (pool, deliverer):
            connections = {}
            for service in SERVICES:
                connections[service] = await pool.fetchval(
                    "INSERT INTO connections "
                    "(user_id, service, access_token_enc, external_user_name) "
                    "VALUES ($1, $2, $3, 'sandbox') RETURNING id",
                    USER,
                    service,
                    CIPHER.encrypt(sb.env["SANDBOX_TOKEN"]),
                )
            yield Setup(pool, sb, deliverer, connections)


async def queued(setup: Setup, service: str, kind: str, content: dict[str, Any]) -> uuid.UUID:
    occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    connection = setup.connections[service]
    return await queue_work(
        setup.pool, connection, USER, service, kind, content, occurred_at=occurred
    )


async def deliver(setup: Setup, scrobble_id: uuid.UUID) -> str:
    """Claim the row (due now) and deliver it; the outcome label."""
    await setup.pool.execute(
        "UPDATE scrobbles SET next_attempt_at = now() WHERE id = $1", scrobble_id
    )
    return await deliver_once(setup.pool, setup.deliverer, scrobble_id)


FILM = {
    "type": "movie",
    "title": "Dropped Film",
    "year": 2003,
    "external_ids": {"imdb": "tt0000190"},
}
EPISODE = {
    "type": "episode",
    "title": "Dropped Episode",
    "season": 2,
    "number": 5,
    "show": {"title": "Dropped Show", "year": 2010, "external_ids": {"tvdb": 919191}},
}
TRACK = {"type": "track", "title": "Dropped Track", "artists": ["Breakers"], "duration_ms": 200000}


def history(sb: Sandbox, service: str) -> list[dict[str, Any]]:
    state = sb.trakt.snapshot() if service == "trakt" else sb.simkl.snapshot()
    return list(state["history"])


@pytest.mark.parametrize(
    ("service", "kind", "item", "path"),
    [
        ("trakt", "watched", FILM, "/sync/history"),
        ("trakt", "watched", EPISODE, "/sync/history"),
        ("simkl", "watched", FILM, "/sync/history"),
        ("simkl", "watched", EPISODE, "/sync/history"),
        ("lastfm", "scrobble", TRACK, "/"),
    ],
)
async def test_an_answer_broken_off_is_not_sent_twice(
    setup: Setup, service: str, kind: str, item: dict[str, Any], path: str
) -> None:
    sb = setup.sb
    content = {**item, "id": str(uuid.uuid4())}
    scrobble_id = await queued(setup, service, kind, content)
    getattr(sb, service).faults.drop(path_prefix=path)
    assert await deliver(setup, scrobble_id) == "retry"  # no answer: worth another try
    assert await deliver(setup, scrobble_id) == "already_done"
    if service == "lastfm":
        held = [s for s in sb.lastfm.snapshot()["scrobbles"] if s["track"] == "Dropped Track"]
    else:
        held = [h for h in history(sb, service) if "Dropped" in json.dumps(h)]
    assert len(held) == 1, held
    row = await setup.pool.fetchrow(
        "SELECT status, attempts FROM scrobbles WHERE id = $1", scrobble_id
    )
    assert row is not None
    assert (row["status"], row["attempts"]) == ("sent", 2)
    sb.reset()


async def test_sent_again_when_the_first_attempt_never_arrived(setup: Setup) -> None:
    """The question finds nothing: the work goes out (once)."""
    sb = setup.sb
    content = {
        **FILM,
        "id": str(uuid.uuid4()),
        "title": "Hung Film",
        "external_ids": {"imdb": "tt0000191"},
    }
    scrobble_id = await queued(setup, "trakt", "watched", content)
    sb.trakt.faults.error(503, path_prefix="/sync/history")
    assert await deliver(setup, scrobble_id) == "retry"
    assert await deliver(setup, scrobble_id) == "done"
    held = [h for h in history(sb, "trakt") if "Hung Film" in json.dumps(h)]
    assert len(held) == 1, held
    assert sb.trakt.requests("/sync/history/movies", method="GET"), "no question was asked"
    sb.reset()
