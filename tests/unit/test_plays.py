"""One play, and when it counts: pure tests of scrobble_shared.plays."""

from __future__ import annotations

import uuid
from datetime import timedelta

from scrobble_shared.events import PlaybackEvent
from scrobble_shared.plays import Play, Step, advance, listen_threshold_ms
from tests.support.events import T0, event


def run(events: list[PlaybackEvent], start: Play | None = None) -> list[Step]:
    steps, current = [], start
    for item in events:
        step = advance(current, item, uuid.uuid4)
        steps.append(step)
        current = step.play
    return steps


def track(action: str, position_s: float, at_s: float, **kw: object) -> PlaybackEvent:
    return event(action, int(position_s * 1000), content_type="track", at_s=at_s, **kw)  # type: ignore[arg-type]


def test_listen_rule() -> None:
    assert listen_threshold_ms(30_000) is None  # 30 s is not longer than 30 s
    assert listen_threshold_ms(30_001) == 15_000
    assert listen_threshold_ms(367_000) == 183_500
    assert listen_threshold_ms(600_000) == 240_000  # 4 minutes come first
    assert listen_threshold_ms(None) == 240_000


def test_progress_only_player_counts_exactly_once() -> None:
    steps = run([track("progress", s, s) for s in (10, 100, 180, 190, 300, 366)])
    assert [s.counted_now for s in steps] == [False, False, False, True, False, False]
    assert len({s.play.id for s in steps}) == 1
    # Joined at 10 s of play: the listen started 10 s before that event.
    assert steps[-1].play.started_at == T0


def test_duplicate_stops_count_once_and_the_late_one_changes_nothing() -> None:
    steps = run([track("start", 0, 0), track("stop", 367, 367), track("stop", 367, 368)])
    assert [s.counted_now for s in steps] == [False, True, False]
    assert [s.finished_now for s in steps] == [False, True, False]
    assert steps[2].late
    assert steps[2].play == steps[1].play


def test_paused_track_counts_once_not_again_on_resume() -> None:
    steps = run(
        [
            track("start", 0, 0),
            track("pause", 200, 200),
            track("resume", 200, 900),
            track("progress", 300, 1000),
            track("stop", 367, 1067),
        ]
    )
    assert [s.counted_now for s in steps] == [False, True, False, False, False]
    assert len({s.play.id for s in steps}) == 1


def test_two_real_plays_of_one_item_are_two_plays() -> None:
    steps = run(
        [
            track("start", 0, 0),
            track("stop", 367, 367),
            track("start", 0, 400),
            track("stop", 367, 767),
        ]
    )
    assert [s.counted_now for s in steps] == [False, True, False, True]
    assert steps[0].play.id != steps[2].play.id
    assert [s.play.play_number for s in steps] == [1, 1, 2, 2]
    assert steps[2].play.started_at == T0 + timedelta(seconds=400)


def test_looping_progress_only_player_makes_a_new_play() -> None:
    steps = run([track("progress", s, s) for s in (100, 200, 360)] + [track("progress", 5, 372)])
    assert steps[3].play.id != steps[0].play.id
    assert steps[3].superseded is not None
    assert steps[3].superseded.id == steps[0].play.id


def test_start_over_inside_a_counted_play_is_a_new_play() -> None:
    steps = run([track("start", 0, 0), track("progress", 200, 200), track("start", 0, 210)])
    assert steps[2].play.id != steps[0].play.id
    assert steps[2].superseded is not None


def test_repeated_start_at_the_beginning_is_the_same_play() -> None:
    steps = run([track("start", 0, 0), track("start", 1, 1), track("progress", 190, 190)])
    assert len({s.play.id for s in steps}) == 1
    assert steps[2].counted_now


def test_silence_ends_a_play_and_the_next_event_begins_another() -> None:
    steps = run([event("progress", 9_000_000, at_s=0), event("progress", 100_000, at_s=1900)])
    assert steps[1].play.id != steps[0].play.id
    assert steps[1].superseded is not None
    assert steps[1].superseded.max_progress == 90.0
    assert steps[1].superseded.finished


def test_a_stop_after_a_long_pause_still_belongs_to_its_play() -> None:
    steps = run([event("start", 0, at_s=0), event("stop", 9_000_000, at_s=4000)])
    assert steps[0].play.id == steps[1].play.id
    assert steps[1].finished_now


def test_resumed_mid_track_counts_only_what_was_played() -> None:
    steps = run([track("start", 180, 0), track("progress", 300, 120), track("stop", 364, 184)])
    assert [s.counted_now for s in steps] == [False, False, True]


def test_short_tracks_never_count_and_unknown_length_counts_at_four_minutes() -> None:
    short = run([track("start", 0, 0, content={"duration_ms": 25_000}), track("stop", 25, 25)])
    assert not any(s.counted_now for s in short)
    unknown = {"duration_ms": None}
    steps = run(
        [
            event("start", 0, content_type="track", content=unknown),
            event("progress", 239_000, content_type="track", at_s=239, content=unknown),
            event("progress", 240_000, content_type="track", at_s=240, content=unknown),
        ]
    )
    assert [s.counted_now for s in steps] == [False, False, True]


def test_video_never_counts_as_a_listen_but_keeps_its_highest_progress() -> None:
    steps = run(
        [event("start", 0), event("progress", 9_000_000, at_s=60), event("stop", 100, at_s=61)]
    )
    assert not any(s.counted_now for s in steps)
    assert steps[-1].play.max_progress == 90.0
    assert steps[-1].finished_now
