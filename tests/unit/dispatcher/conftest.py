"""One sandbox and one HTTP client for the client tests; each test gets the fakes reset."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from scrobble_dispatcher.transport import new_client
from scrobble_sandbox import Sandbox, running_sandbox


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The fakes, reset, with rate limits off (pacing is the dispatcher's job, tested there);
    a test that wants a limit sets it."""
    sandbox.reset()
    sandbox.disable_rate_limits()
    return sandbox


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(httpx.Timeout(5.0)) as client:
        yield client
