"""The intake while Kafka or Postgres is away: 503 with Retry-After when a webhook cannot be
published, and the resend has exactly one effect; a known source keeps working while
Postgres is down (Plex and Jellyfin never resend), an unknown one is a 503."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from scrobble_shared.events import parse_usable_event
from tests.support.infra import frozen_local_kafka, restart_local_postgres
from tests.support.intake import IntakeSetup
from tests.unit.intake.test_translate_jellyfin import MOVIE, jellyfin

pytestmark = pytest.mark.integration
OWNER = uuid.UUID("0a0e0000-0000-4000-8000-0000000000aa")


def progress(position_s: int) -> dict[str, object]:
    return jellyfin(
        "PlaybackProgress",
        MOVIE,
        PlaybackPositionTicks=position_s * 10_000_000,
        UtcTimestamp=f"2026-11-20T21:{position_s // 60:02d}:{position_s % 60:02d}Z",
    )


async def test_kafka_away_is_a_503_and_the_resend_counts_once(intake_setup: IntakeSetup) -> None:
    setup = intake_setup
    if setup.infra.source != "local":
        pytest.skip("needs the local broker of deploy/local to stop and resume it")
    _, path = await setup.source("jellyfin", owner=OWNER)
    intake = setup.process(INTAKE_PUBLISH_TIMEOUT="2s")
    await intake.start()
    base = f"http://127.0.0.1:{intake.metrics_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            before = await http.post(path, json=progress(60))
            assert before.status_code == 202, before.text
            async with frozen_local_kafka():
                during = await http.post(path, json=progress(120))
                ready = await http.get("/readyz")
            assert during.status_code == 503, during.text
            assert during.headers["Retry-After"] == "5"
            assert "Kafka" in during.json()["detail"]
            assert ready.status_code == 503
            assert ready.json()["checks"]["kafka"] == "unavailable"
            resent = await http.post(path, json=progress(120))
            assert resent.status_code == 202, resent.text
    finally:
        assert await intake.stop() == 0, intake.log_tail()
    published = [parse_usable_event(m.value) for m in await setup.published(expected=2)]
    ids = [e.event_id for e in published]
    assert set(ids) == {before.json()["event_id"], resent.json()["event_id"]}
    # The record sent before the 503 may arrive too: the same event, so ingest takes it once.
    resends = [e for e in published if e.event_id == resent.json()["event_id"]]
    assert 1 <= len(resends) <= 2
    assert all(e == resends[0] for e in resends)


async def test_postgres_away_known_sources_go_on_unknown_ones_wait(
    intake_setup: IntakeSetup,
) -> None:
    setup = intake_setup
    if setup.infra.source != "local":
        pytest.skip("needs the local Postgres of deploy/local to stop and start it")
    _, known = await setup.source("jellyfin", owner=OWNER)
    _, never_used = await setup.source("jellyfin", owner=OWNER)
    intake = setup.process()
    await intake.start()
    base = f"http://127.0.0.1:{intake.metrics_port}"
    stopped = asyncio.Event()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            assert (await http.post(known, json=progress(10))).status_code == 202
            outage = asyncio.create_task(restart_local_postgres(down_s=8, stopped=stopped))
            await stopped.wait()
            during = await http.post(known, json=progress(20))
            unknown = await http.post(never_used, json=progress(30))
            ready = await http.get("/readyz")
            await outage
            after = await http.post(never_used, json=progress(40))
    finally:
        assert await intake.stop() == 0, intake.log_tail()
    assert during.status_code == 202, during.text
    assert unknown.status_code == 503, unknown.text
    assert unknown.headers["Retry-After"] == "5"
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"] == "unavailable"
    assert after.status_code == 202, after.text
    published = await setup.published(expected=3)
    assert len(published) == 3
