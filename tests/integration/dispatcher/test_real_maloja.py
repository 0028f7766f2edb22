"""Against a REAL Maloja server (malojaserver 3.2.3, tests/support/maloja.py): the gateway's
connect flow checks the user's API key at the user's server, and the dispatcher's listen is
accepted by Maloja and then in Maloja's own records, read back with its own API. The
sandbox's Maloja fake is there only for the other trackers' settings and must get no call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_sandbox.maloja.fake import MalojaFake
from tests.integration.dispatcher.test_delivery import (
    connect_with_token,
    dispatcher,
    sync_status,
    wait_until_settled,
)
from tests.integration.gateway.test_connect_support import serve_gateway
from tests.support.events import T0, event
from tests.support.infra import Infra
from tests.support.ingest import IngestSetup
from tests.support.maloja import OWNER, RealMaloja, running_maloja

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def maloja(tmp_path: Path) -> AsyncIterator[RealMaloja]:
    async with running_maloja(tmp_path) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        yield sb


async def test_listen_is_in_real_malojas_records(
    ingest_setup: IngestSetup, sandbox: Sandbox, maloja: RealMaloja
) -> None:
    setup = ingest_setup
    await connect_with_token(setup, "maloja", maloja.api_key, maloja.url)
    # Two artists: Maloja splits its one artist string at ";", never at ",".
    track = {"artists": ["Aphex Twin", "Squarepusher"]}
    events = [
        event("start", 0, content_type="track", content=track, at_s=300),
        event("progress", 200_000, content_type="track", content=track, at_s=500),
    ]
    await setup.publish_plays(events)
    process = dispatcher(setup, sandbox)
    # No connection names the fake; the configured server is the real one too.
    process.env["MALOJA_API_URL"] = maloja.url
    async with setup.running(setup.process(), process):
        found = await wait_until_settled(setup.database_url)
    assert found == {("maloja", "scrobble"): ["sent"]}, (process.log_tail(), maloja.log_tail())
    assert (await sync_status(setup.database_url))["maloja"][0] == "ok"
    [kept] = await maloja.scrobbles()
    assert kept["time"] == int((T0 + timedelta(seconds=300)).timestamp())
    assert kept["track"]["artists"] == ["Aphex Twin", "Squarepusher"]
    assert kept["track"]["title"] == "Windowlicker"
    assert kept["track"]["album"]["albumtitle"] == "Windowlicker"
    assert kept["track"]["length"] == 367  # our duration in seconds, as Maloja reads it
    assert kept["origin"] == f"client:{OWNER}"  # sent with the key we were given
    assert sandbox.fake("maloja", MalojaFake).requests("/") == []


async def test_connect_checks_the_key_at_the_users_real_maloja(
    infra: Infra, database_url: str, sandbox: Sandbox, maloja: RealMaloja
) -> None:
    async with (
        serve_gateway(infra, database_url, sandbox) as gw,
        httpx.AsyncClient(timeout=10.0) as client,
    ):
        user = uuid.uuid4()
        wrong = await gw.start(
            client, user, "maloja", {"token": "not-a-key-of-this-server", "api_url": maloja.url}
        )
        assert wrong.status_code == 400, wrong.text
        assert wrong.json()["title"] == "Invalid Maloja token"
        assert await gw.connections(user) == []

        answer = await gw.start(
            client, user, "maloja", {"token": maloja.api_key, "api_url": maloja.url + "/"}
        )
        assert answer.status_code == 201, answer.text
        assert maloja.api_key not in answer.text
        [row] = await gw.connections(user)
        assert (row["service"], row["status"], row["api_url"]) == ("maloja", "active", maloja.url)
        assert row["external_user_name"] == OWNER  # Maloja's NAME, from its validate-token
        assert gw.access_token(row) == maloja.api_key
    assert sandbox.fake("maloja", MalojaFake).requests("/") == []
