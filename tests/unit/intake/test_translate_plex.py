"""Plex webhook payloads (the JSON of the ``payload`` form field) to PlaybackEvent v1."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from scrobble_intake.translate import Ignored, Skip, Unusable
from tests.unit.intake import items
from tests.unit.intake.support import (
    ALICE,
    OWNER,
    RECEIVED,
    item_id,
    outcome,
    published,
    session_id,
    source,
)

PLAYER = "3b2d5e9c-1f0a-4c7e-8d6b-2a9f4e1c7b30"
MOVIE: dict[str, Any] = {
    "librarySectionType": "movie",
    "ratingKey": "4217",
    "key": "/library/metadata/4217",
    "guid": "plex://movie/5d776830880197001ec90bbe",
    "type": "movie",
    "title": "Heat",
    "librarySectionTitle": "Films",
    "librarySectionID": 1,
    "year": 1995,
    "duration": 10_200_000,
    "Guid": [{"id": "imdb://tt0113277"}, {"id": "tmdb://949"}, {"id": "tvdb://1019"}],
}
EPISODE: dict[str, Any] = {
    "librarySectionType": "show",
    "ratingKey": "9001",
    "guid": "plex://episode/5d9c0874ffd9ef001e99607a",
    "type": "episode",
    "title": "Good News About Hell",
    "grandparentTitle": "Severance",
    "parentTitle": "Season 1",
    "parentIndex": 1,
    "index": 1,
    "librarySectionTitle": "Shows",
    "year": 2022,
    "duration": 3_420_000,
    "Guid": [{"id": "imdb://tt11650328"}, {"id": "tvdb://8472645"}],
}
TRACK: dict[str, Any] = {
    "librarySectionType": "artist",
    "ratingKey": "77",
    "guid": "plex://track/5d07cdb5403c640290f5a7b1",
    "type": "track",
    "title": "Windowlicker",
    "grandparentTitle": "Aphex Twin",
    "parentTitle": "Windowlicker",
    "index": 1,
    "parentIndex": 1,
    "librarySectionTitle": "Music",
    "duration": 367_000,
}


def plex(event: str, metadata: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "event": event,
        "user": True,
        "owner": True,
        "Account": {"id": 1234567, "thumb": "https://plex.tv/users/x/avatar", "title": "alice"},
        "Server": {"title": "Attic", "uuid": "9f1c2b3a4d5e6f708192a3b4c5d6e7f8a9b0c1d2"},
        "Player": {
            "local": True,
            "publicAddress": "203.0.113.7",
            "title": "Living Room TV",
            "uuid": PLAYER,
        },
        "Metadata": metadata,
        **top,
    }


PERSONAL = source("plex")


def test_play_of_a_movie_field_by_field() -> None:
    event = published(plex("media.play", MOVIE), PERSONAL)
    event_id = event.pop("event_id")
    assert event == {
        "schema_version": 1,
        "user_id": str(OWNER),
        "session_id": session_id(f"{PLAYER}|4217"),
        # Plex sends no time of its own: the event is dated when it arrived.
        "occurred_at": "2026-11-20T21:05:00Z",
        "action": "start",
        "position_ms": 0,
        "content": {
            **items.HEAT,
            "id": item_id("4217"),
            "external_ids": {"imdb": "tt0113277", "tmdb": 949, "tvdb": 1019},
        },
        "client": {"device": "Living Room TV"},
    }
    assert len(event_id) == 36


def test_scrobble_without_a_position_is_progress_at_ninety_percent() -> None:
    event = published(plex("media.scrobble", MOVIE), PERSONAL)
    assert event["action"] == "progress"
    assert event["progress_percent"] == 90.0
    assert event["position_ms"] == 9_180_000


def test_scrobble_past_ninety_percent_keeps_its_share() -> None:
    event = published(plex("media.scrobble", {**MOVIE, "viewOffset": 9_690_000}), PERSONAL)
    assert (event["position_ms"], event["progress_percent"]) == (9_690_000, 95.0)


def test_scrobble_of_an_item_of_unknown_length_still_counts_as_watched() -> None:
    movie = {k: v for k, v in MOVIE.items() if k != "duration"}
    event = published(plex("media.scrobble", movie), PERSONAL)
    assert (event["position_ms"], event["progress_percent"]) == (0, 90.0)


@pytest.mark.parametrize(
    ("name", "action"),
    [("media.pause", "pause"), ("media.resume", "resume"), ("media.stop", "stop")],
)
def test_pause_resume_stop_carry_the_view_offset_in_ms(name: str, action: str) -> None:
    event = published(plex(name, {**MOVIE, "viewOffset": 1_234_567}), PERSONAL)
    assert (event["action"], event["position_ms"]) == (action, 1_234_567)


def test_an_episode_carries_show_season_number_and_its_own_ids() -> None:
    content = published(plex("media.play", EPISODE), PERSONAL)["content"]
    assert content == {
        **items.GOOD_NEWS_ABOUT_HELL,
        "id": item_id("9001"),
        "year": 2022,
        "show": {"title": "Severance"},
        "external_ids": {"imdb": "tt11650328", "tvdb": 8472645},
    }


def test_a_legacy_tvdb_guid_names_the_show_season_and_episode() -> None:
    episode = {
        "ratingKey": "55",
        "type": "episode",
        "title": "Pilot",
        "grandparentTitle": "The Wire",
        "guid": "com.plexapp.agents.thetvdb://79126/1/18?lang=en",
        "duration": 3_600_000,
    }
    content = published(plex("media.play", episode), PERSONAL)["content"]
    assert content["show"] == {"title": "The Wire", "external_ids": {"tvdb": 79126}}
    assert (content["season"], content["number"]) == (1, 18)
    assert "external_ids" not in content


def test_a_legacy_imdb_guid_as_real_captures_escape_it() -> None:
    raw = json.dumps(plex("media.play", {**MOVIE, "Guid": []})).replace(
        '"plex://movie/5d776830880197001ec90bbe"',
        '"com.plexapp.agents.imdb:\\/\\/tt0090728?lang=en"',
    )
    content = published(json.loads(raw), PERSONAL)["content"]
    assert content["external_ids"] == {"imdb": "tt0090728"}


def test_a_hama_anidb_guid_makes_an_anime_episode() -> None:
    episode = {
        "ratingKey": "66",
        "type": "episode",
        "title": "The Journey's End",
        "grandparentTitle": "Frieren",
        "guid": "com.plexapp.agents.hama://anidb-17617/1/1?lang=en",
        "duration": 1_440_000,
    }
    content = published(plex("media.play", episode), PERSONAL)["content"]
    assert content["type"] == "anime_episode"
    assert content["show"] == {"title": "Frieren", "external_ids": {"anidb": 17617}}
    assert (content["season"], content["number"]) == (1, 1)


def test_a_track_carries_artist_album_and_number() -> None:
    content = published(plex("media.play", TRACK), PERSONAL)["content"]
    assert content == {
        **items.WINDOWLICKER,
        "id": item_id("77"),
        "album_artist": "Aphex Twin",
        "track_number": 1,
    }


def test_a_track_artist_other_than_the_album_artist_comes_first() -> None:
    track = {**TRACK, "originalTitle": "Squarepusher", "grandparentTitle": "Various Artists"}
    content = published(plex("media.play", track), PERSONAL)["content"]
    assert content["artists"] == ["Squarepusher"]
    assert content["album_artist"] == "Various Artists"


def test_rate_is_on_plex_s_ten_point_scale() -> None:
    event = published(plex("media.rate", MOVIE, rating=8.0), PERSONAL)
    assert (event["action"], event["rating"]) == ("rate", 8.0)
    assert "position_ms" not in event


def test_rate_falls_back_on_the_user_rating_and_a_cleared_rating_is_ignored() -> None:
    event = published(plex("media.rate", {**MOVIE, "userRating": 6.0}), PERSONAL)
    assert event["rating"] == 6.0
    assert isinstance(outcome(plex("media.rate", MOVIE, rating=0.0), PERSONAL), Ignored)
    assert isinstance(outcome(plex("media.rate", MOVIE), PERSONAL), Ignored)


def test_two_ratings_in_one_moment_are_two_events() -> None:
    first = published(plex("media.rate", MOVIE, rating=6.0), PERSONAL)["event_id"]
    assert published(plex("media.rate", MOVIE, rating=8.0), PERSONAL)["event_id"] != first


@pytest.mark.parametrize(
    "name",
    ["library.new", "library.on.deck", "admin.database.backup", "device.new", "playback.started"],
)
def test_events_that_are_no_playback_are_ignored(name: str) -> None:
    assert isinstance(outcome(plex(name, MOVIE), PERSONAL), Ignored)


@pytest.mark.parametrize("kind", ["clip", "show", "season", "album", "photo"])
def test_items_that_are_no_movie_episode_or_track_are_ignored(kind: str) -> None:
    assert isinstance(outcome(plex("media.play", {**MOVIE, "type": kind}), PERSONAL), Ignored)


def test_another_account_s_play_on_the_owner_s_server_is_not_the_owner_s() -> None:
    theirs = plex("media.play", MOVIE, user=False, Account={"id": 99, "title": "guest"})
    assert outcome(theirs, PERSONAL) == Skip("unmapped")


def test_mapped_accounts_go_to_their_users_by_id_or_title() -> None:
    shared = source("plex", owner=None, mappings={"1234567": ALICE})
    assert published(plex("media.play", MOVIE, user=False), shared)["user_id"] == str(ALICE)
    by_title = source("plex", owner=None, mappings={"ALICE": ALICE})
    assert published(plex("media.play", MOVIE), by_title)["user_id"] == str(ALICE)


def test_the_library_is_filtered() -> None:
    no_music = source("plex", deny_libraries=("music",))
    assert outcome(plex("media.play", TRACK), no_music) == Skip("library")
    assert published(plex("media.play", MOVIE), no_music)["action"] == "start"


def test_a_resend_is_the_same_event_however_late_and_the_next_watch_is_not() -> None:
    first = published(plex("media.scrobble", MOVIE), PERSONAL)["event_id"]
    hours_later = RECEIVED + timedelta(hours=5)
    assert published(plex("media.scrobble", MOVIE), PERSONAL, hours_later)["event_id"] == first
    watched_once = {**MOVIE, "viewCount": 1, "lastViewedAt": 1795000000}
    assert published(plex("media.scrobble", watched_once), PERSONAL)["event_id"] != first
    again = published(plex("media.scrobble", watched_once), PERSONAL, hours_later)["event_id"]
    assert again == published(plex("media.scrobble", watched_once), PERSONAL)["event_id"]


def test_events_of_one_watch_differ_by_type_and_offset() -> None:
    ids = {
        published(plex(name, {**MOVIE, "viewOffset": offset}), PERSONAL)["event_id"]
        for name, offset in [
            ("media.play", 0),
            ("media.pause", 600_000),
            ("media.resume", 600_000),
            ("media.pause", 1_200_000),
            ("media.stop", 1_800_000),
        ]
    }
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"Metadata": MOVIE}, "event"),
        ({"event": "media.play"}, "Metadata"),
        ({"event": "media.play", "Metadata": {"title": "Heat"}}, "Metadata.type"),
        ({"event": "media.play", "Metadata": {"type": "movie"}}, "Metadata.title"),
        ({"event": "media.play", "Metadata": ["not", "an", "object"]}, "Metadata"),
    ],
)
def test_unusable_payloads_name_what_is_missing(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(Unusable) as raised:
        outcome(payload, PERSONAL)
    assert problem in str(raised.value)
