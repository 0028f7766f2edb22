"""An intake of one's own per test: ``scrobble intake`` as a process on a free port, with a
private database and playback topic (the ``intake_setup`` fixture, registered in
tests/integration/conftest.py), and helpers to make sources and read what was published."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from scrobble_shared.db.sources import create_source, map_server_user
from scrobble_shared.sources import Source, SourceFilters, SourceKind, webhook_path
from tests.support.infra import Infra
from tests.support.kafka import Message, collect
from tests.support.services import ServiceProcess
from tests.support.topics import Topics


@dataclass
class IntakeSetup:
    infra: Infra
    database_url: str
    playback: str
    env: dict[str, str]
    tmp: Path

    def process(self, **env: str) -> ServiceProcess:
        """A ``scrobble intake`` serving webhooks and its probes on one free port."""
        proc = ServiceProcess("intake", {**self.env, **env}, self.tmp / "intake.log")
        proc.env["INTAKE_PORT"] = str(proc.metrics_port)
        proc.env["INTAKE_PUBLIC_URL"] = f"http://127.0.0.1:{proc.metrics_port}"
        return proc

    async def source(
        self,
        kind: SourceKind,
        *,
        owner: uuid.UUID | None = None,
        mappings: Mapping[str, uuid.UUID] | None = None,
        filters: SourceFilters | None = None,
    ) -> tuple[Source, str]:
        """A new source and the path of its webhook URL (with the secret)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            made, secret = await create_source(conn, kind, f"test {kind}", owner, filters)
            for server_user, user in (mappings or {}).items():
                await map_server_user(conn, made.id, "any", server_user, user)
        finally:
            await conn.close()
        return made, webhook_path(kind, secret)

    async def published(
        self, expected: int, deadline_s: float = 30, settle_s: float = 2.0
    ) -> list[Message]:
        """Everything on the playback topic, once ``expected`` records are there (and a
        little longer, so extra ones would be seen too)."""
        return await collect(
            self.infra.kafka_bootstrap, [self.playback], expected, deadline_s, settle_s
        )


@pytest.fixture
async def intake_setup(
    infra: Infra, database_url: str, topics: Topics, tmp_path: Path
) -> IntakeSetup:
    playback = await topics.create("playback.events")
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "PLAYBACK_TOPIC": playback,
    }
    return IntakeSetup(infra, database_url, playback, env, tmp_path)
