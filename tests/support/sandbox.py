"""The sandbox's fakes for a test: one sandbox server per session (per conftest that takes
these fixtures), reset before each test.

Rate limits are switched off after the reset so a test can send several writes in a row;
the tests of the limits switch them back on with small, explicit figures. A reset also
turns auto-approve off: a consent page waits for Approve unless a test turns it on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_sandbox.lastfm.signature import sign


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sandbox_server() -> AsyncIterator[Sandbox]:
    async with running_sandbox("127.0.0.1", 0) as sb:
        yield sb


@pytest.fixture
def sb(sandbox_server: Sandbox) -> Sandbox:
    sandbox_server.reset()
    sandbox_server.disable_rate_limits()
    return sandbox_server


# --- calls to the fakes, as their tests make them ----------------------------------------


async def form_call(
    client: httpx.AsyncClient, url: str, params: dict[str, str], http: str = "POST"
) -> httpx.Response:
    """A Last.fm-protocol call: the parameters as a query (GET) or a form (POST)."""
    if http == "GET":
        return await client.get(url, params=params)
    return await client.post(url, data=params)


async def lastfm_write(
    sb: Sandbox, client: httpx.AsyncClient, method: str, session_key: str, **fields: str
) -> httpx.Response:
    """A Last.fm write with the sandbox's API key and ``session_key``, signed with its
    shared secret."""
    params = {"method": method, "api_key": sb.env["LASTFM_API_KEY"], "sk": session_key}
    params |= fields
    signature = sign(params, sb.env["LASTFM_API_SECRET"])
    return await client.post(
        sb.env["LASTFM_API_URL"], data=params | {"api_sig": signature, "format": "json"}
    )


async def simkl_activities(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(
        f"{sb.env['SIMKL_API_URL']}/sync/activities",
        headers={"simkl-api-key": sb.env["SIMKL_CLIENT_ID"], "Authorization": f"Bearer {token}"},
    )


async def anilist_query(
    sb: Sandbox, client: httpx.AsyncClient, token: str, query: str
) -> httpx.Response:
    return await client.post(
        sb.env["ANILIST_API_URL"],
        json={"query": query},
        headers={"Authorization": f"Bearer {token}"},
    )
