"""Fairness between users (issue 15), the pure parts: what a consumer batch sends of one
connection's rows, and how far a user's turn on a shared key moves."""

from __future__ import annotations

import uuid
from datetime import timedelta

from scrobble_dispatcher.consumer import Named, plan_turn
from scrobble_dispatcher.pacing import PaceKey, app_pacing_key, pacing_keys

CONNECTION = uuid.UUID("6f1c1a8e-0000-4000-8000-000000000001")
SIZES = {"scrobble": 50}


def rows(*kinds: str) -> list[Named]:
    return [Named(uuid.UUID(int=n + 1), kind, "lastfm", CONNECTION) for n, kind in enumerate(kinds)]


def size(row: Named) -> int:
    return SIZES.get(row.kind, 1)


def test_a_backlog_sends_one_call_now_and_leaves_the_rest_in_order() -> None:
    named = rows(*["scrobble"] * 120)
    turn = plan_turn(named, size)
    assert turn.now == named[:50]
    assert turn.later == named[50:]
    assert turn.skipped == []


def test_work_that_goes_alone_sends_only_itself_now() -> None:
    named = rows("rating", "scrobble", "scrobble")
    turn = plan_turn(named, size)
    assert turn.now == named[:1]
    assert turn.later == named[1:]


def test_the_first_call_ends_where_a_run_of_scrobbles_ends() -> None:
    named = rows("scrobble", "scrobble", "rating", "scrobble")
    turn = plan_turn(named, size)
    assert turn.now == named[:2]
    assert turn.later == named[2:]


def test_now_playing_already_over_is_skipped_wherever_it_is() -> None:
    named = rows("now_playing", "scrobble", "now_playing", "scrobble", "now_playing")
    turn = plan_turn(named, size)
    assert turn.skipped == [named[0], named[2]]
    assert turn.now == [named[1], named[3]]
    # The last now playing is the connection's latest: it goes, after the rest.
    assert turn.later == [named[4]]


def test_a_connection_with_work_waiting_its_turn_sends_nothing_ahead_of_it() -> None:
    named = rows("now_playing", "scrobble", "scrobble")
    turn = plan_turn(named, size, waiting=True)
    assert turn.now == []
    assert turn.skipped == [named[0]]
    assert turn.later == named[1:]


def test_app_keys_carry_the_users_share_and_user_keys_none() -> None:
    simkl = pacing_keys("simkl", CONNECTION, "app", share="user-1")
    assert [k.share for k in simkl] == [None, "user-1"]
    assert simkl[1].key == app_pacing_key("simkl", "app")
    lastfm = pacing_keys("lastfm", CONNECTION, "app", share="user-1")
    assert [k.share for k in lastfm] == ["user-1"]
    assert pacing_keys("trakt", CONNECTION, "app", share="user-1")[0].share is None


def test_a_turn_is_the_keys_rate_divided_among_the_users_taking_turns() -> None:
    plain = PaceKey("simkl:app", timedelta(seconds=1), share="u")
    windowed = PaceKey("lastfm:app", timedelta(seconds=1), lanes=5, share="u")
    assert plain.fair_step(1) == timedelta(seconds=1)
    assert plain.fair_step(3) == timedelta(seconds=3)
    assert windowed.fair_step(1) == timedelta(milliseconds=200)
    assert windowed.fair_step(4) == timedelta(milliseconds=800)
