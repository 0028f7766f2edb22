"""One batch through Postgres (``process_batch``), on event ids spelled in capitals: the
schema takes a UUID in either case, and it is the same event whichever way it is written."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from scrobble_ingest import store
from scrobble_ingest.batch import process_batch
from scrobble_ingest.plan import DUPLICATE, PROCESSED, Record
from scrobble_shared.work_message import WorkTopics
from tests.support.events import USER, event

pytestmark = pytest.mark.integration

TOPICS = WorkTopics("playback.events.dlq", "scrobble.")


def record(offset: int, document: dict[str, object]) -> Record:
    return Record("playback.events", 0, offset, USER.encode(), json.dumps(document).encode())


async def start_in_two_spellings(conn: asyncpg.Connection) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user connected to Last.fm; a start event, and the same with its id in capitals."""
    await conn.execute(
        "INSERT INTO connections (user_id, service) VALUES ($1, 'lastfm')", uuid.UUID(USER)
    )
    start = event("start", 0, content_type="track").to_json_dict()
    return start, {**start, "event_id": str(start["event_id"]).upper()}


async def test_an_event_id_in_capitals_is_processed_and_then_a_duplicate(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        start, capitals = await start_in_two_spellings(conn)

        first = await process_batch(conn, [record(0, capitals)], store.load_connections, TOPICS)
        assert first.outcomes.get(PROCESSED) == 1
        assert first.queued == {"lastfm": 1}

        # The same event again, once in capitals and once as the lower case it also is:
        # seen before, both.
        again = [record(1, capitals), record(2, start)]
        second = await process_batch(conn, again, store.load_connections, TOPICS)
        assert second.outcomes.get(DUPLICATE) == 2
        assert second.queued == {}
        assert await conn.fetchval("SELECT count(*) FROM scrobbles") == 1
    finally:
        await conn.close()


async def test_one_event_twice_in_a_batch_in_two_spellings_counts_once(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        start, capitals = await start_in_two_spellings(conn)
        batch = [record(0, start), record(1, capitals)]
        result = await process_batch(conn, batch, store.load_connections, TOPICS)
        assert (result.outcomes.get(PROCESSED), result.outcomes.get(DUPLICATE)) == (1, 1)
        assert await conn.fetchval("SELECT count(*) FROM scrobbles") == 1
    finally:
        await conn.close()
