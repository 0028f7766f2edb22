"""Fixtures for the sandbox tests: one sandbox server per session, reset before each test.

Rate limits are switched off after the reset so rule tests can send several writes in a
row; the rate-limit tests switch them back on with small, explicit figures.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_sandbox.credentials import SANDBOX_TOKEN


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server() -> AsyncIterator[Sandbox]:
    async with running_sandbox("127.0.0.1", 0) as sb:
        yield sb


@pytest.fixture
def sb(server: Sandbox) -> Sandbox:
    server.reset()
    server.disable_rate_limits()
    return server


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as c:
        yield c


@pytest.fixture
def token() -> str:
    return SANDBOX_TOKEN
