"""Acceptance 2: an import whose worker is killed (SIGKILL) half way is finished by the
next worker from its saved cursor, with nothing twice: not in ``imported_items``, not on
the ``imported`` topic, and no page asked for again except the one in flight."""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from typing import Any

import asyncpg
import pytest

from scrobble_sandbox.core.recording import RecordedRequest
from tests.integration.imports.support import ImportSetup
from tests.integration.imports.test_full_and_incremental import ITEMS, at, track_seed, trakt_seed
from tests.support.kafka import collect

pytestmark = pytest.mark.integration


def seed(imports: ImportSetup, service: str) -> None:
    sb = imports.sandbox
    if service == "trakt":
        trakt_seed(sb, 0, ITEMS)
    elif service == "lastfm":
        sb.lastfm.seed(
            "scrobbles",
            [
                dict(zip(("artist", "track", "timestamp"), track_seed(n), strict=True))
                for n in range(ITEMS)
            ],
        )
    else:
        sb.listenbrainz.seed(
            "listens",
            [
                {
                    "listened_at": int(at(n).timestamp()),
                    "track_metadata": {
                        "artist_name": track_seed(n)[0],
                        "track_name": track_seed(n)[1],
                    },
                }
                for n in range(ITEMS)
            ],
        )


def page_requests(imports: ImportSetup, service: str) -> list[RecordedRequest]:
    sb = imports.sandbox
    if service == "trakt":
        return sb.trakt.requests("/sync/history")
    if service == "lastfm":
        return [
            r for r in sb.lastfm.requests("/") if r.query.get("method") == "user.getrecenttracks"
        ]
    return sb.listenbrainz.requests("/user/sandbox/listens")


def position(service: str, request: RecordedRequest) -> str:
    return str(request.query["max_ts" if service == "listenbrainz" else "page"])


def cursor_position(service: str, cursor: dict[str, Any]) -> str:
    return str(cursor["max_ts" if service == "listenbrainz" else "page"])


# Read pacing as in test_full_and_incremental (Trakt's 100 pages fit its fake's limit).
@pytest.mark.parametrize(
    ("service", "kill_after", "pacing"),
    [("trakt", 30, False), ("lastfm", 15, True), ("listenbrainz", 4, True)],
)
async def test_killed_half_way_resumes_without_duplicates(
    imports: ImportSetup, service: str, kill_after: int, pacing: bool
) -> None:
    await imports.connect(service)
    seed(imports, service)
    first = imports.worker(read_pacing=pacing, name="first")
    await first.start()
    job = await imports.start(service)
    half = await imports.wait_job(job["id"], first, until=lambda j: j["pages_done"] >= kill_after)
    await first.stop(signal.SIGKILL)
    killed = await imports.job(job["id"])
    assert killed["state"] == "running", killed  # left behind, its lease still on
    conn = await asyncpg.connect(imports.gateway.database_url)
    try:
        saved = json.loads(
            await conn.fetchval(
                "SELECT cursor FROM import_jobs WHERE id = $1", uuid.UUID(job["id"])
            )
        )
    finally:
        await conn.close()
    asked_before = len(page_requests(imports, service))
    assert half["pages_done"] < asked_before + 1

    second = imports.worker(read_pacing=pacing, name="second")
    await second.start()
    try:
        done = await imports.wait_job(job["id"], second, deadline_s=120)
    finally:
        assert await second.stop() == 0
    assert done["state"] == "done", second.log_tail()
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS
    assert done["items_added"] == ITEMS
    after = page_requests(imports, service)[asked_before:]
    assert position(service, after[0]) == cursor_position(service, saved)
    everything = [position(service, r) for r in page_requests(imports, service)]
    repeated = [p for p, n in Counter(everything).items() if n > 1]
    assert len(repeated) <= 1, repeated  # at most the page in flight when it was killed
    messages = await collect(
        imports.env["KAFKA_BOOTSTRAP_SERVERS"], [imports.imported_topic], ITEMS, settle_s=3.0
    )
    ids = Counter(m.headers["message-id"] for m in messages)
    assert len(ids) == ITEMS
    assert max(ids.values()) == 1
