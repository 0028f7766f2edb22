"""CONTRACTS section 2, row by row: what each event turns into for each service."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from scrobble_shared.events import PlaybackEvent
from scrobble_shared.plays import Play, Step, advance
from scrobble_shared.service_names import ServiceName
from scrobble_shared.work import (
    ConnectionRules,
    Work,
    WorkKind,
    finished_play_work,
    mark_watched_work,
    play_work,
    rating_work,
    takes,
)
from tests.support.events import T0, event
from tests.support.rules import rules_of

NOW_PLAYING, START, PAUSE = WorkKind.NOW_PLAYING, WorkKind.START, WorkKind.PAUSE
SCROBBLE, WATCHED, RATING = WorkKind.SCROBBLE, WorkKind.WATCHED, WorkKind.RATING


def rules(service: ServiceName, **kw: Any) -> ConnectionRules:
    return rules_of(service, **kw)


def steps_for(events: list[PlaybackEvent]) -> list[Step]:
    steps: list[Step] = []
    current: Play | None = None
    for item in events:
        step = advance(current, item, uuid.uuid4)
        steps.append(step)
        current = step.play
    return steps


def kinds_for(conn: ConnectionRules, events: list[PlaybackEvent]) -> list[list[WorkKind]]:
    return [
        [w.kind for w in play_work(conn, e, s)]
        for e, s in zip(events, steps_for(events), strict=True)
    ]


def video(content_type: str) -> list[PlaybackEvent]:
    """start, progress 50 %, pause, resume, progress 90 %, stop at 95 %."""
    duration = {"movie": 10_000_000, "episode": 3_000_000, "anime_episode": 1_440_000}[content_type]
    return [
        event(action, int(duration * pct), content_type=content_type, at_s=i * 60)
        for i, (action, pct) in enumerate(
            [
                ("start", 0),
                ("progress", 0.5),
                ("pause", 0.5),
                ("resume", 0.5),
                ("progress", 0.9),
                ("stop", 0.95),
            ]
        )
    ]


def music() -> list[PlaybackEvent]:
    """start, progress past half, pause, resume, stop: one listen, on the progress."""
    return [
        event(action, s * 1000, content_type="track", at_s=s + extra)
        for action, s, extra in [
            ("start", 0, 0),
            ("progress", 200, 0),
            ("pause", 250, 0),
            ("resume", 250, 60),
            ("stop", 367, 60),
        ]
    ]


@pytest.mark.parametrize("service", ["trakt", "simkl"])
@pytest.mark.parametrize("content_type", ["movie", "episode"])
def test_trakt_and_simkl_follow_the_player(service: ServiceName, content_type: str) -> None:
    assert kinds_for(rules(service), video(content_type)) == [
        [START],
        [],
        [PAUSE],
        [START],
        [],
        [SCROBBLE],
    ]


def test_simkl_takes_anime_and_trakt_does_not() -> None:
    assert kinds_for(rules("simkl"), video("anime_episode"))[-1] == [SCROBBLE]
    assert kinds_for(rules("trakt"), video("anime_episode")) == [[]] * 6


def test_anilist_only_hears_a_watched_stop() -> None:
    assert kinds_for(rules("anilist"), video("anime_episode")) == [[], [], [], [], [], [WATCHED]]


def test_anilist_takes_an_anime_episode_whatever_ids_it_has() -> None:
    # Title and year only: the resolver searches AniList; resolution decides, not ingest.
    titled = {"show": {"title": "Frieren", "year": 2023}}
    direct = {"external_ids": {"anilist": 154587}, "show": {"title": "Frieren"}}
    for content in (titled, direct, None):  # None: the default, with a MAL id
        anime = event("stop", 1, content_type="anime_episode", content=content).content
        assert takes(rules("anilist"), anime)
    assert not takes(rules("anilist"), event("stop", 1, content_type="episode").content)


def test_a_title_only_anime_episode_is_queued_for_anilist() -> None:
    titled = {"show": {"title": "Frieren", "year": 2023}}
    plays = [
        event("start", 0, content_type="anime_episode", content=titled),
        event("stop", 1_400_000, content_type="anime_episode", content=titled, at_s=60),
    ]
    assert kinds_for(rules("anilist"), plays) == [[], [WATCHED]]


@pytest.mark.parametrize("service", ["lastfm", "listenbrainz"])
def test_music_now_playing_then_one_listen(service: ServiceName) -> None:
    assert kinds_for(rules(service), music()) == [[NOW_PLAYING], [SCROBBLE], [], [NOW_PLAYING], []]


def test_maloja_takes_the_listen_without_now_playing() -> None:
    # Maloja takes a playing_now call and keeps nothing: no call is made for it.
    assert kinds_for(rules("maloja"), music()) == [[], [SCROBBLE], [], [], []]


@pytest.mark.parametrize("service", ["lastfm", "listenbrainz", "maloja"])
def test_music_services_take_only_tracks(service: ServiceName) -> None:
    assert kinds_for(rules(service), video("movie")) == [[]] * 6


@pytest.mark.parametrize("service", ["trakt", "simkl", "anilist"])
def test_video_services_take_no_tracks(service: ServiceName) -> None:
    assert kinds_for(rules(service), music()) == [[]] * 5


def test_a_listen_is_dated_when_the_play_started() -> None:
    conn = rules("lastfm")
    events = music()
    works = [
        w for e, s in zip(events, steps_for(events), strict=True) for w in play_work(conn, e, s)
    ]
    listen = next(w for w in works if w.kind is SCROBBLE)
    assert listen.occurred_at == T0
    assert listen.dedupe_key.startswith("play:")
    assert listen.dedupe_key.endswith(":listen")


@pytest.mark.parametrize("service", ["trakt", "simkl"])
def test_stop_below_threshold_is_sent_as_pause(service: ServiceName) -> None:
    events = [event("start", 0), event("stop", 5_000_000, at_s=60)]
    kinds = kinds_for(rules(service), events)
    assert kinds == [[START], [PAUSE]]


@pytest.mark.parametrize("service", ["trakt", "simkl"])
def test_watched_below_the_services_own_rule_goes_through_history(service: ServiceName) -> None:
    conn = rules(service, scrobble_threshold_percent=70)
    events = [event("start", 0), event("stop", 7_500_000, at_s=60)]  # 75 %
    assert kinds_for(conn, events) == [[START], [WATCHED]]


@pytest.mark.parametrize("service", ["trakt", "simkl"])
def test_stop_above_80_but_below_a_higher_threshold_is_not_watched(service: ServiceName) -> None:
    conn = rules(service, scrobble_threshold_percent=90)
    events = [event("start", 0), event("stop", 8_500_000, at_s=60)]  # 85 %
    assert kinds_for(conn, events) == [[START], [PAUSE]]


def test_crossed_then_sought_back_still_ends_watched() -> None:
    conn = rules("trakt")
    events = [
        event("start", 0),
        event("progress", 9_500_000, at_s=60),
        event("stop", 1_000_000, at_s=61),
    ]
    assert kinds_for(conn, events)[-1] == [WATCHED]


def test_duplicate_stops_give_one_piece_of_work_per_play() -> None:
    conn = rules("trakt")
    events = [
        event("start", 0),
        event("stop", 9_500_000, at_s=60),
        event("stop", 9_500_000, at_s=61),
    ]
    assert kinds_for(conn, events) == [[START], [SCROBBLE], []]


def test_watched_work_of_one_play_shares_its_key_across_events() -> None:
    """However a play ends watched (stop, silence, history), the key is the play's, so the
    database lets exactly one through."""
    conn = rules("simkl", scrobble_threshold_percent=50)
    events = [event("start", 0), event("progress", 6_000_000, at_s=60)]
    steps = steps_for(events)
    silent = finished_play_work(conn, steps[-1].play)
    stop = event("stop", 6_000_000, at_s=61)
    stopped = play_work(conn, stop, advance(steps[-1].play, stop, uuid.uuid4))
    assert [w.dedupe_key for w in silent] == [w.dedupe_key for w in stopped]


def test_silence_after_crossing_finishes_as_watched_but_not_below() -> None:
    conn = rules("trakt")
    crossed = steps_for([event("progress", 9_000_000)])[0].play
    below = steps_for([event("progress", 1_000_000)])[0].play
    assert [w.kind for w in finished_play_work(conn, crossed)] == [WATCHED]
    assert finished_play_work(conn, below) == []
    assert finished_play_work(rules("lastfm"), crossed) == []


def test_a_new_play_after_silence_finishes_the_old_one_as_watched() -> None:
    conn = rules("trakt")
    events = [event("progress", 9_000_000), event("start", 0, at_s=3600)]
    assert kinds_for(conn, events) == [[], [WATCHED, START]]


def test_disabled_connection_gets_nothing() -> None:
    assert kinds_for(rules("trakt", enabled=False), video("movie")) == [[]] * 6
    assert kinds_for(rules("lastfm", enabled=False), music()) == [[]] * 5


def rate(content_type: str, value: float, **content: Any) -> PlaybackEvent:
    return event("rate", content_type=content_type, rating=value, content=content or None)


@pytest.mark.parametrize(
    ("service", "content_type", "value", "expected"),
    [
        ("trakt", "movie", 7, [RATING]),
        ("simkl", "episode", 3, [RATING]),
        ("anilist", "anime_episode", 9, [RATING]),
        ("lastfm", "track", 8, [RATING]),
        ("lastfm", "track", 7.5, []),
        ("listenbrainz", "track", 10, [RATING]),
        ("listenbrainz", "track", 5, []),
        ("maloja", "track", 10, []),  # Maloja keeps no ratings
        ("trakt", "track", 9, []),
    ],
)
def test_ratings_when_synced(
    service: ServiceName, content_type: str, value: float, expected: list[WorkKind]
) -> None:
    item = rate(content_type, value)
    assert [w.kind for w in rating_work(rules(service, sync_ratings=True), item)] == expected
    assert rating_work(rules(service, sync_ratings=False), item) == []


def test_listenbrainz_love_needs_a_recording_mbid() -> None:
    no_mbid = rate("track", 10, external_ids={"isrc": "GBAYE0000351"})
    assert rating_work(rules("listenbrainz", sync_ratings=True), no_mbid) == []
    assert rating_work(rules("lastfm", sync_ratings=True), no_mbid) != []


@pytest.mark.parametrize(
    ("service", "content_type", "expected"),
    [
        ("trakt", "movie", [WATCHED]),
        ("simkl", "anime_episode", [WATCHED]),
        ("anilist", "anime_episode", [WATCHED]),
        ("lastfm", "track", []),
        ("listenbrainz", "track", []),
        ("maloja", "track", []),
    ],
)
def test_mark_watched_when_synced(
    service: ServiceName, content_type: str, expected: list[WorkKind]
) -> None:
    item = event("mark_watched", content_type=content_type, watched_at="2026-11-01T10:00:00Z")
    works: list[Work] = mark_watched_work(rules(service, sync_watch_status=True), item)
    assert [w.kind for w in works] == expected
    assert all(w.occurred_at.isoformat() == "2026-11-01T10:00:00+00:00" for w in works)
    assert mark_watched_work(rules(service, sync_watch_status=False), item) == []


def test_mark_watched_twice_for_the_same_moment_has_one_key() -> None:
    conn = rules("trakt", sync_watch_status=True)
    first = event("mark_watched", watched_at="2026-11-01T10:00:00Z")
    again = event("mark_watched", watched_at="2026-11-01T10:00:00Z", at_s=5)
    assert (
        mark_watched_work(conn, first)[0].dedupe_key == mark_watched_work(conn, again)[0].dedupe_key
    )
