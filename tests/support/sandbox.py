"""The sandbox's fakes for a test: one sandbox server per session (per conftest that takes
these fixtures), reset before each test.

Rate limits are switched off after the reset so a test can send several writes in a row;
the tests of the limits switch them back on with small, explicit figures. A reset also
turns auto-approve off: a consent page waits for Approve unless a test turns it on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from scrobble_sandbox import Sandbox, running_sandbox


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sandbox_server() -> AsyncIterator[Sandbox]:
    async with running_sandbox("127.0.0.1", 0) as sb:
        yield sb


@pytest.fixture
def sb(sandbox_server: Sandbox) -> Sandbox:
    sandbox_server.reset()
    sandbox_server.disable_rate_limits()
    return sandbox_server
