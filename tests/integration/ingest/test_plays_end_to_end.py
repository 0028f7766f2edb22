"""One play = one scrobble on the real stack: duplicates, repeats, players that never stop,
pause and resume, and plays that fall silent. Plus the service's health endpoints."""

from __future__ import annotations

import httpx
import pytest

from tests.support.events import USER, event
from tests.support.ingest import IngestSetup
from tests.support.kafka import collect, event_record, publish

pytestmark = pytest.mark.integration


def track(action: str, position_s: float, at_s: float, session: str = "s-1") -> dict[str, object]:
    item = event(action, int(position_s * 1000), content_type="track", at_s=at_s, session=session)
    return item.to_json_dict()


async def test_one_play_one_listen(ingest_setup: IngestSetup) -> None:
    setup = ingest_setup
    await setup.connect(USER, "listenbrainz")
    duplicate_stops = [track("start", 0, 0), track("stop", 367, 367), track("stop", 367, 368)]
    same_stop_again = duplicate_stops[1]  # the very same event, republished
    played_twice = [
        track("start", 0, 1000, "s-2"),
        track("stop", 367, 1367, "s-2"),
        track("start", 0, 1400, "s-2"),
        track("stop", 367, 1767, "s-2"),
    ]
    progress_only = [track("progress", s, 3000 + s, "s-3") for s in (30, 120, 190, 250, 360)]
    paused = [
        track("start", 0, 5000, "s-4"),
        track("pause", 200, 5200, "s-4"),
        track("resume", 200, 5800, "s-4"),
        track("progress", 300, 5900, "s-4"),
    ]
    events = [*duplicate_stops, same_stop_again, *played_twice, *progress_only, *paused]
    await publish(setup.infra.kafka_bootstrap, setup.playback, [event_record(e) for e in events])

    ingest = setup.process()
    await ingest.start()
    try:
        topic = setup.service_topics["listenbrainz"]
        messages = await collect(setup.infra.kafka_bootstrap, [topic], expected=10)
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{ingest.metrics_port}/healthz")
            ready = await client.get(f"http://127.0.0.1:{ingest.metrics_port}/readyz")
    finally:
        assert await ingest.stop() == 0

    listens = [m.json() for m in messages if m.json()["kind"] == "scrobble"]
    now_playing = [m.json() for m in messages if m.json()["kind"] == "now_playing"]
    # 1 (duplicate stops) + 2 (played twice) + 1 (progress only) + 1 (paused) listens.
    assert len(listens) == 5
    assert len(now_playing) == 5  # every start (4) and the resume
    assert sorted(listen["occurred_at"] for listen in listens) == [
        event("start", 0, at_s=s).occurred_at.isoformat() for s in (0, 1000, 1400, 3000, 5000)
    ]
    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "kafka": "ok"}


async def test_silent_video_play_finishes_as_watched(ingest_setup: IngestSetup) -> None:
    """A player that crossed the threshold and then fell silent: watched, through history."""
    setup = ingest_setup
    setup.env["SCROBBLE_SILENCE_TIMEOUT"] = "2s"
    trakt = await setup.connect(USER, "trakt")
    crossed = [
        event("start", 0, at_s=-600).to_json_dict(),
        event("progress", 9_000_000).to_json_dict(),
    ]
    not_crossed = [
        event("start", 0, content_type="episode", at_s=-600).to_json_dict(),
        event("progress", 600_000, content_type="episode").to_json_dict(),
    ]
    # Dated days ago: silence counts from when ingest last touched the play, so these
    # plays are only closed once nothing came for the silence timeout.
    await publish(
        setup.infra.kafka_bootstrap,
        setup.playback,
        [event_record(e) for e in [*crossed, *not_crossed]],
    )
    ingest = setup.process()
    await ingest.start()
    try:
        topic = setup.service_topics["trakt"]
        messages = await collect(setup.infra.kafka_bootstrap, [topic], expected=3, deadline_s=30)
        metrics = await ingest.metrics()
    finally:
        assert await ingest.stop() == 0
    kinds = [(m.json()["content"]["type"], m.json()["kind"]) for m in messages]
    assert kinds.count(("movie", "watched")) == 1
    assert ("episode", "watched") not in kinds
    assert kinds.count(("movie", "start")) == 1
    assert kinds.count(("episode", "start")) == 1
    watched = next(m.json() for m in messages if m.json()["kind"] == "watched")
    assert watched["connection_id"] == str(trakt)
    assert "scrobble_ingest_plays_finished_by_silence_total 2.0" in metrics
