"""The ``imports`` fixture: a gateway in-process, the sandbox, and the environment of an
import worker (or dispatcher) process, all private to the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scrobble_sandbox import running_sandbox
from tests.integration.gateway.conftest import open_gateway
from tests.integration.imports.support import ImportSetup
from tests.support.infra import Infra
from tests.support.topics import Topics


@pytest.fixture
async def imports(
    infra: Infra, database_url: str, topics: Topics, tmp_path: Path
) -> AsyncIterator[ImportSetup]:
    await topics.create("scrobble.imports")
    imported = await topics.create("scrobble.imported")
    gateway = await open_gateway(infra, database_url, topics)
    try:
        async with running_sandbox(host="127.0.0.1", port=0) as sb:
            key = gateway.settings.token_encryption_key
            assert key is not None
            env = {
                **sb.env,
                "DATABASE_URL": database_url,
                "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
                "TOKEN_ENCRYPTION_KEY": key.get_secret_value(),
                "SCROBBLE_TOPIC_PREFIX": topics.name("scrobble."),
                "PLAYBACK_TOPIC": topics.name("playback.events"),
                "DISPATCHER_GROUP_ID": topics.name("dispatcher"),
                "SCROBBLE_RETRY_BACKOFF": "1s",
            }
            yield ImportSetup(gateway, sb, env, imported, tmp_path)
    finally:
        await gateway.client.close()
