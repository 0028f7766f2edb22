"""An ingest service of one's own per test: private database, topics and consumer group
(the `ingest_setup` fixture, registered in tests/integration/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from scrobble_shared.events import PlaybackEvent
from scrobble_shared.trackers.registry import SERVICES
from tests.support.infra import Infra
from tests.support.kafka import event_record, publish
from tests.support.services import ServiceProcess
from tests.support.topics import Topics

__all__ = ["SERVICES", "IngestSetup", "ingest_setup"]
# Room for the 1 MiB poison value, unchanged on its way to the dead-letter topic.
BIG_MESSAGES = {"max.message.bytes": str(4 * 1024 * 1024)}


@dataclass
class IngestSetup:
    infra: Infra
    database_url: str
    playback: str
    dead_letters: str
    service_topics: dict[str, str]
    env: dict[str, str]
    tmp: Path

    def process(self) -> ServiceProcess:
        return ServiceProcess("ingest", self.env, self.tmp / "ingest.log")

    async def publish_plays(self, events: Iterable[PlaybackEvent]) -> None:
        """Onto this test's playback topic, keyed by user as intake keys them."""
        records = [event_record(e.to_json_dict()) for e in events]
        await publish(self.infra.kafka_bootstrap, self.playback, records)

    @asynccontextmanager
    async def running(self, *processes: ServiceProcess) -> AsyncIterator[None]:
        """``processes`` started in this order; afterwards stopped in the reverse order,
        each of which must exit 0."""
        for process in processes:
            await process.start()
        try:
            yield
        finally:
            for process in reversed(processes):
                assert await process.stop() == 0

    async def connect(
        self, user: str, service: str, *, enabled: bool = True, **settings: object
    ) -> uuid.UUID:
        conn = await asyncpg.connect(self.database_url)
        try:
            columns = ["user_id", "service", "enabled", *settings]
            values = [uuid.UUID(user), service, enabled, *settings.values()]
            placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
            connection_id: uuid.UUID = await conn.fetchval(
                f"INSERT INTO connections ({', '.join(columns)}) VALUES ({placeholders}) "  # noqa: S608
                "RETURNING id",
                *values,
            )
            return connection_id
        finally:
            await conn.close()


@pytest.fixture
async def ingest_setup(
    infra: Infra, database_url: str, topics: Topics, tmp_path: Path
) -> IngestSetup:
    playback = await topics.create("playback.events", config=BIG_MESSAGES)
    dead_letters = await topics.create("playback.events.dlq", config=BIG_MESSAGES)
    service_topics = {s: await topics.create(f"scrobble.{s}") for s in SERVICES}
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "PLAYBACK_TOPIC": playback,
        "SCROBBLE_TOPIC_PREFIX": topics.name("scrobble."),
        "INGEST_GROUP_ID": topics.name("ingest"),
    }
    return IngestSetup(infra, database_url, playback, dead_letters, service_topics, env, tmp_path)
