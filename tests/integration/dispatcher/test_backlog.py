"""Backlogs: a connection's waiting scrobbles go in batched calls where the service takes
them (Last.fm and Libre.fm 50 per track.scrobble, ListenBrainz imports), now playing of
plays that are already over is skipped, and now playing with nothing after it still goes
out."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from scrobble_sandbox import Sandbox
from tests.integration.dispatcher.test_delivery import (
    connect_with_token,
    dispatcher,
    librefm_fake,
    sandbox,
    wait_until_settled,
)
from tests.support.events import event
from tests.support.ingest import IngestSetup
from tests.support.kafka import event_record, publish

pytestmark = pytest.mark.integration
__all__ = ["sandbox"]  # the fixture, shared with test_delivery

TRACKS = 120


async def wait_for_queued(dsn: str, kind: str, n: int, deadline_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while loop.time() < until:
        conn = await asyncpg.connect(dsn)
        try:
            found = await conn.fetchval("SELECT count(*) FROM scrobbles WHERE kind = $1", kind)
        finally:
            await conn.close()
        if found >= n:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{n} {kind} rows not queued within {deadline_s} s")


def track_plays(n: int) -> list[dict[str, object]]:
    """n different tracks, each started and listened to the end, 4 minutes apart."""
    events = []
    for i in range(n):
        content = {"id": f"7b000000-0000-4000-8000-{i:012d}", "title": f"Track {i}"}
        at = i * 240
        events.append(event("start", 0, content_type="track", at_s=at, content=content))
        events.append(event("stop", 360_000, content_type="track", at_s=at + 200, content=content))
    return [e.to_json_dict() for e in events]


async def test_a_backlog_goes_in_batches(ingest_setup: IngestSetup, sandbox: Sandbox) -> None:
    setup, sb = ingest_setup, sandbox
    token = sb.env["SANDBOX_TOKEN"]
    for service in ("lastfm", "librefm", "listenbrainz"):
        await connect_with_token(setup, service, token)
    await publish(
        setup.infra.kafka_bootstrap, setup.playback, [event_record(e) for e in track_plays(TRACKS)]
    )
    # Ingest first: the whole backlog is queued before the dispatcher reads any of it.
    ingest = setup.process()
    await ingest.start()
    dispatch = dispatcher(setup, sb)
    try:
        await wait_for_queued(setup.database_url, "scrobble", 3 * TRACKS)
        await dispatch.start()
        found = await wait_until_settled(setup.database_url, deadline_s=120)
    finally:
        assert await dispatch.stop() == 0
        assert await ingest.stop() == 0
    for service, fake in (("lastfm", sb.lastfm), ("librefm", librefm_fake(sb))):
        assert found[(service, "scrobble")] == ["sent"] * TRACKS, dispatch.log_tail()
        assert set(found[(service, "now_playing")]) == {"failed"}  # over already: skipped

        calls = [r for r in fake.requests("/") if r.body.get("method") == "track.scrobble"]
        sizes = [sum(1 for key in r.body if key.startswith("artist[")) for r in calls]
        # 120 scrobbles in calls of at most 50: three or a few more (Kafka may split the
        # backlog into several polls), never one call per scrobble.
        assert sum(sizes) == TRACKS, service
        assert max(sizes) == 50, service
        assert len(calls) <= TRACKS // 10, (service, sizes)
        assert all(r.status == 200 for r in calls)
        methods = {r.body.get("method") for r in fake.requests("/")}
        assert "track.updateNowPlaying" not in methods
    assert found[("listenbrainz", "scrobble")] == ["sent"] * TRACKS

    imports = sb.listenbrainz.requests("/submit-listens")
    assert {r.body["listen_type"] for r in imports} == {"import"}
    assert sum(len(r.body["payload"]) for r in imports) == TRACKS
    assert len(imports) <= TRACKS // 10
    stored = sb.listenbrainz.snapshot()
    assert str(stored).count("Track 1") >= 1


async def test_now_playing_with_nothing_after_it_goes_out(
    ingest_setup: IngestSetup, sandbox: Sandbox
) -> None:
    setup, sb = ingest_setup, sandbox
    token = sb.env["SANDBOX_TOKEN"]
    for service in ("lastfm", "librefm", "listenbrainz"):
        await connect_with_token(setup, service, token)
    async with setup.running(setup.process(), dispatcher(setup, sb)):
        await setup.publish_plays([event("start", 0, content_type="track", at_s=0)])
        found = await wait_until_settled(setup.database_url)
    assert found == {
        ("lastfm", "now_playing"): ["sent"],
        ("librefm", "now_playing"): ["sent"],
        ("listenbrainz", "now_playing"): ["sent"],
    }
    for fake in (sb.lastfm, librefm_fake(sb)):
        assert [r.body.get("method") for r in fake.requests("/")] == ["track.updateNowPlaying"]
    assert librefm_fake(sb).state.now_playing["sandbox"]["track"] == "Windowlicker"
    listen_types = [r.body.get("listen_type") for r in sb.listenbrainz.requests("/submit-listens")]
    assert listen_types == ["playing_now"]
