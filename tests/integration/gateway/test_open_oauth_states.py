"""The limit on a user's open connect flows (``GATEWAY_MAX_OPEN_OAUTH_STATES``): a flow is
open while it is neither used nor expired. Starting one more than the limit drops the
user's oldest open flow, whose link then stops working; the newest always works. Here the
limit is 3, the real gateway app talks to the sandbox's fakes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from scrobble_sandbox import Sandbox
from tests.integration.gateway.test_connect_support import (
    API,
    HTML,
    ConnectGateway,
    auth,
    callback_url,
    follow,
    serve_gateway,
)
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

LIMIT = 3
OPEN = """SELECT state FROM oauth_states
          WHERE user_id = $1 AND used_at IS NULL AND expires_at > now()
          ORDER BY created_at"""


@pytest_asyncio.fixture(loop_scope="session")
async def gw(infra: Infra, database_url: str, sb: Sandbox) -> AsyncIterator[ConnectGateway]:
    async with serve_gateway(
        infra, database_url, sb, GATEWAY_MAX_OPEN_OAUTH_STATES=str(LIMIT)
    ) as gateway:
        yield gateway


async def open_states(gw: ConnectGateway, user: uuid.UUID) -> list[str]:
    return [row["state"] for row in await gw.sql(OPEN, user)]


async def start(
    gw: ConnectGateway, client: httpx.AsyncClient, user: uuid.UUID, service: str
) -> dict[str, Any]:
    answer = await gw.start(client, user, service)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_one_flow_past_the_limit_drops_the_oldest_open_one(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    flows = [await start(gw, client, user, "trakt") for _ in range(LIMIT + 1)]

    assert await open_states(gw, user) == [f["state"] for f in flows[1:]]
    oldest = await client.get(
        await callback_url(client, flows[0]["authorization_url"]), headers=HTML
    )
    assert oldest.status_code == 400
    assert "Sign-in link not recognised" in oldest.text
    assert await gw.connections(user) == []

    newest = await follow(client, flows[-1]["authorization_url"], headers=HTML)

    assert newest.status_code == 200, newest.text
    assert "Trakt connected" in newest.text
    assert len(sb.trakt.requests("/oauth/token")) == 1  # the dropped link never got there


async def test_used_and_expired_flows_do_not_count(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    used, expired, still_open = [await start(gw, client, user, "simkl") for _ in range(3)]
    assert (await follow(client, used["authorization_url"])).status_code == 200
    await gw.sql(
        "UPDATE oauth_states SET created_at = now() - interval '11 minutes', "
        "expires_at = now() - interval '1 minute' WHERE state = $1",
        expired["state"],
    )

    later = [await start(gw, client, user, "simkl") for _ in range(LIMIT - 1)]

    assert await open_states(gw, user) == [still_open["state"]] + [f["state"] for f in later]


async def test_the_limit_holds_when_flows_start_at_once(
    gw: ConnectGateway, client: httpx.AsyncClient
) -> None:
    user = uuid.uuid4()

    answers = await asyncio.gather(*(gw.start(client, user, "anilist") for _ in range(8)))

    assert [a.status_code for a in answers] == [200] * 8
    kept = await open_states(gw, user)
    assert len(kept) == LIMIT
    assert set(kept) <= {a.json()["state"] for a in answers}


async def test_the_limit_is_per_user(gw: ConnectGateway, client: httpx.AsyncClient) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alices = [(await start(gw, client, alice, "lastfm"))["state"] for _ in range(LIMIT)]

    for _ in range(LIMIT + 2):
        await start(gw, client, bob, "lastfm")

    assert await open_states(gw, alice) == alices
    assert len(await open_states(gw, bob)) == LIMIT


async def test_a_device_code_is_an_open_flow_too(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    user = uuid.uuid4()
    device = await client.post(f"{gw.url}{API}/connect/trakt/device", headers=auth(user))
    assert device.status_code == 200, device.text
    for _ in range(LIMIT):
        await start(gw, client, user, "trakt")

    poll = await client.post(
        f"{gw.url}{API}/connect/trakt/device/poll",
        json={"device_code": device.json()["device_code"]},
        headers=auth(user),
    )

    assert poll.status_code == 404  # dropped as the oldest open flow
    assert sb.trakt.requests("/oauth/device/token") == []
    assert len(await open_states(gw, user)) == LIMIT
