"""CONTRACTS section 2 end to end: events on the real playback topic, the ingest service as
a process, and the work that lands on each service topic, for the right connections only."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest

from scrobble_shared.events import PlaybackEvent
from tests.support.events import USER, event
from tests.support.ingest import IngestSetup
from tests.support.kafka import collect, event_record, publish

pytestmark = pytest.mark.integration

OTHER_USER = "7a1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e22"
UNKNOWN_USER = "9c1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e33"


def movie_play() -> list[PlaybackEvent]:
    return [
        event("start", 0, at_s=0),
        event("progress", 5_000_000, at_s=60),
        event("pause", 5_000_000, at_s=61),
        event("resume", 5_000_000, at_s=120),
        event("progress", 9_000_000, at_s=180),
        event("stop", 9_500_000, at_s=240),
    ]


async def test_every_row_of_the_table(ingest_setup: IngestSetup) -> None:
    setup = ingest_setup
    ids = {
        "trakt": await setup.connect(USER, "trakt", sync_ratings=True, sync_watch_status=True),
        "simkl": await setup.connect(USER, "simkl", sync_ratings=True, sync_watch_status=True),
        "anilist": await setup.connect(USER, "anilist", sync_ratings=True, sync_watch_status=True),
        "lastfm": await setup.connect(USER, "lastfm", sync_ratings=True),
        "listenbrainz": await setup.connect(USER, "listenbrainz", sync_ratings=True),
    }
    other_trakt = await setup.connect(OTHER_USER, "trakt", enabled=False)
    other_lastfm = await setup.connect(OTHER_USER, "lastfm")

    movie = movie_play()
    duplicate_stop = event("stop", 9_500_000, at_s=241)
    anime = [
        event("start", 0, content_type="anime_episode", at_s=300),
        event("progress", 1_300_000, content_type="anime_episode", at_s=360),
        event("stop", 1_400_000, content_type="anime_episode", at_s=400),
    ]
    track = [
        event("start", 0, content_type="track", at_s=500),
        event("progress", 200_000, content_type="track", at_s=700),
        event("stop", 367_000, content_type="track", at_s=867),
    ]
    ratings = [
        event("rate", content_type="movie", rating=8, at_s=900),
        event("rate", content_type="track", rating=9, at_s=901),
    ]
    marked = event("mark_watched", content_type="episode", watched_at="2026-11-01T10:00:00Z")
    others = [
        event("start", 0, user=OTHER_USER, at_s=10),
        event("stop", 9_500_000, user=OTHER_USER, at_s=20),
        event("start", 0, content_type="track", user=OTHER_USER, at_s=30),
    ]
    unknown = event("start", 0, content_type="track", user=UNKNOWN_USER)
    mine = [*movie, duplicate_stop, movie[-1], *anime, *track, *ratings, marked]
    await publish(
        setup.infra.kafka_bootstrap,
        setup.playback,
        [event_record(e.to_json_dict()) for e in [*mine, *others, unknown]],
    )

    ingest = setup.process()
    await ingest.start()
    try:
        topics = [*setup.service_topics.values(), setup.dead_letters]
        messages = await collect(setup.infra.kafka_bootstrap, topics, expected=23)
    finally:
        assert await ingest.stop() == 0

    by_connection: dict[str, list[str]] = defaultdict(list)
    for message in messages:
        if message.topic == setup.dead_letters:
            continue
        body = message.json()
        assert message.key == body["connection_id"].encode()
        assert message.topic == setup.service_topics[body["service"]]
        by_connection[body["connection_id"]].append(body["kind"])

    assert by_connection == {
        str(ids["trakt"]): ["start", "pause", "start", "scrobble", "rating", "watched"],
        str(ids["simkl"]): [
            "start",
            "pause",
            "start",
            "scrobble",
            "start",
            "scrobble",
            "rating",
            "watched",
        ],
        str(ids["anilist"]): ["watched"],
        str(ids["lastfm"]): ["now_playing", "scrobble", "rating"],
        str(ids["listenbrainz"]): ["now_playing", "scrobble", "rating"],
        str(other_lastfm): ["now_playing"],
    }
    assert str(other_trakt) not in by_connection

    dead = [m for m in messages if m.topic == setup.dead_letters]
    assert len(dead) == 1
    assert dead[0].headers["error.class"] == "UnknownUser"
    assert dead[0].value == event_record(unknown.to_json_dict())[1]

    listen = next(
        m.json()
        for m in messages
        if m.topic == setup.service_topics["lastfm"] and m.json()["kind"] == "scrobble"
    )
    assert listen["occurred_at"] == track[0].occurred_at.isoformat()  # when the play began
    assert listen["content"]["artists"] == ["Aphex Twin"]
    assert uuid.UUID(listen["scrobble_id"])
