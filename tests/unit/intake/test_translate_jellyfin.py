"""Jellyfin (jellyfin-plugin-webhook) payloads to PlaybackEvent v1, field by field."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from scrobble_intake.translate import Ignored, Skip, Unusable
from tests.unit.intake import items
from tests.unit.intake.support import (
    ALICE,
    BOB,
    OWNER,
    RECEIVED,
    item_id,
    outcome,
    published,
    session_id,
    source,
)

JF_ALICE = "0f8fad5b-d9cb-469f-a165-70867728950e"
JF_BOB = "7c9e6679742540de944be07fc1f90ae7"
DEVICE = "TW96aWxsYS81LjAgKFgxMSkgRmlyZWZveA11"
MOVIE_ITEM = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
EPISODE_ITEM = "b1b2c3d4e5f60718293a4b5c6d7e8f91"
TRACK_ITEM = "c1b2c3d4e5f60718293a4b5c6d7e8f92"

SERVER = {
    "ServerId": "d7b2f1e0c3a94b5c8e6f1a2b3c4d5e6f",
    "ServerName": "Living room",
    "ServerVersion": "10.10.3",
    "ServerUrl": "http://jellyfin.lan:8096",
}
MOVIE = {
    "ItemId": MOVIE_ITEM,
    "ItemType": "Movie",
    "Name": "Heat",
    "Year": 1995,
    "RunTimeTicks": 102_000_000_000,  # 2 h 50 min
    "RunTime": "02:50:00",
    "Provider_imdb": "tt0113277",
    "Provider_tmdb": "949",
}
EPISODE = {
    "ItemId": EPISODE_ITEM,
    "ItemType": "Episode",
    "Name": "Good News About Hell",
    "Year": 2022,  # the plugin gives an episode its series' production year
    "RunTimeTicks": 34_200_000_000,
    "SeriesName": "Severance",
    "SeriesId": "e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6",
    "SeasonNumber": 1,
    "SeasonNumber00": "01",
    "EpisodeNumber": 1,
    "EpisodeNumber00": "01",
    "Provider_tvdb": "8472645",
    "Provider_imdb": "tt11650328",
}
TRACK = {
    "ItemId": TRACK_ITEM,
    "ItemType": "Audio",
    "Name": "Windowlicker",
    "Year": 1999,
    "RunTimeTicks": 3_670_000_000,
    "Artist": "Aphex Twin",
    "Album": "Windowlicker",
    "Provider_musicbrainztrack": "BD1FBD09-5B3C-45C4-A0E1-3A5D5F3A1F11",
    "Provider_musicbrainzalbum": "5d6a2a5e-1b1a-4f0e-9a5b-8c2d3e4f5a6b",
    "Provider_musicbrainzreleasegroup": "6e7b3b6f-2c2b-4a1f-8b6c-9d3e4f5a6b7c",
    "Provider_musicbrainzartist": "f22942a1-6f70-4f48-866e-238cb2308fbd",
    "Provider_musicbrainzalbumartist": "f22942a1-6f70-4f48-866e-238cb2308fbd",
}


def jellyfin(notification: str, item: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        **SERVER,
        "NotificationType": notification,
        "Timestamp": "2026-11-20T22:04:05.1234567+01:00",
        "UtcTimestamp": "2026-11-20T21:04:05.1234567Z",
        "UserId": JF_ALICE,
        "NotificationUsername": "Alice",
        **item,
    }
    if notification.startswith("Playback"):
        body.update(
            {
                "PlaybackPositionTicks": 0,
                "PlaybackPosition": "00:00:00",
                "MediaSourceId": item.get("ItemId"),
                "IsPaused": False,
                "IsAutomated": False,
                "DeviceId": DEVICE,
                "DeviceName": "Firefox",
                "ClientName": "Jellyfin Web",
                "PlayMethod": "DirectPlay",
            }
        )
    body.update(fields)
    return body


HOME = source("jellyfin", mappings={JF_ALICE: ALICE, "bob": BOB})


def test_playback_start_of_a_movie_field_by_field() -> None:
    event = published(jellyfin("PlaybackStart", MOVIE), HOME)
    event_id = event.pop("event_id")
    assert event == {
        "schema_version": 1,
        "user_id": str(ALICE),
        "session_id": session_id(f"{DEVICE}|{MOVIE_ITEM}"),
        "action": "start",
        "occurred_at": "2026-11-20T21:04:05.123456Z",
        "position_ms": 0,
        "content": {
            **items.HEAT,
            "id": item_id(MOVIE_ITEM),
            "external_ids": {"imdb": "tt0113277", "tmdb": 949},
        },
        "client": {"name": "Jellyfin Web", "device": "Firefox"},
    }
    assert len(event_id) == 36


@pytest.mark.parametrize(
    ("paused", "automated", "action"),
    [
        (False, True, "progress"),  # the server's periodic tick
        (False, False, "progress"),  # a client's own report
        (True, False, "pause"),  # the player says it is paused
        (True, True, "progress"),  # a tick while paused: no pause call every ten seconds
        ("True", "False", "pause"),  # a template that quotes its booleans
    ],
)
def test_playback_progress(paused: object, automated: object, action: str) -> None:
    payload = jellyfin(
        "PlaybackProgress",
        MOVIE,
        PlaybackPositionTicks=51_000_000_000,
        IsPaused=paused,
        IsAutomated=automated,
    )
    event = published(payload, HOME)
    assert event["action"] == action
    assert event["position_ms"] == 5_100_000  # ticks / 10,000


def test_progress_without_is_automated_pauses_only_when_paused() -> None:
    paused = jellyfin("PlaybackProgress", MOVIE, PlaybackPositionTicks=10_000, IsPaused=True)
    del paused["IsAutomated"]
    assert published(paused, HOME)["action"] == "pause"


def test_playback_stop_of_an_episode_carries_show_season_number_and_its_own_ids() -> None:
    payload = jellyfin(
        "PlaybackStop",
        EPISODE,
        PlaybackPositionTicks=32_490_000_000,
        PlayedToCompletion=True,
    )
    event = published(payload, HOME)
    assert event["action"] == "stop"
    assert event["position_ms"] == 3_249_000
    assert event["content"] == {
        **items.GOOD_NEWS_ABOUT_HELL,
        "id": item_id(EPISODE_ITEM),
        "show": {"title": "Severance", "year": 2022},
        "external_ids": {"tvdb": 8472645, "imdb": "tt11650328"},
    }


def test_played_to_completion_does_not_stand_in_for_the_position() -> None:
    payload = jellyfin(
        "PlaybackStop", MOVIE, PlaybackPositionTicks=7_140_000_000, PlayedToCompletion=True
    )
    event = published(payload, HOME)
    assert event["position_ms"] == 714_000  # 7 %, as sent
    assert "progress_percent" not in event


def test_zero_padded_numbers_are_enough() -> None:
    episode = {**EPISODE, "SeasonNumber00": "02", "EpisodeNumber00": "07"}
    del episode["SeasonNumber"], episode["EpisodeNumber"]
    content = published(jellyfin("PlaybackStart", episode), HOME)["content"]
    assert (content["season"], content["number"]) == (2, 7)


def test_a_track_carries_artists_album_length_and_musicbrainz_ids() -> None:
    payload = jellyfin("PlaybackStop", TRACK, PlaybackPositionTicks=3_600_000_000)
    event = published(payload, HOME)
    assert event["position_ms"] == 360_000
    assert event["content"] == {
        **items.WINDOWLICKER,
        "id": item_id(TRACK_ITEM),
        "year": 1999,
        "external_ids": {
            "musicbrainz_recording": "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11",
            "musicbrainz_release": "5d6a2a5e-1b1a-4f0e-9a5b-8c2d3e4f5a6b",
            "musicbrainz_release_group": "6e7b3b6f-2c2b-4a1f-8b6c-9d3e4f5a6b7c",
            "musicbrainz_artists": ["f22942a1-6f70-4f48-866e-238cb2308fbd"],
        },
    }


def test_bad_ids_are_dropped_not_the_event() -> None:
    movie = {**MOVIE, "Provider_imdb": "0113277", "Provider_tmdb": "-3", "Provider_tvdb": "x"}
    content = published(jellyfin("PlaybackStart", movie), HOME)["content"]
    assert "external_ids" not in content


def test_an_episode_with_only_an_anidb_id_is_anime() -> None:
    anime = {**EPISODE, "Provider_anidb": "17617"}
    del anime["Provider_tvdb"], anime["Provider_imdb"]
    content = published(jellyfin("PlaybackStart", anime), HOME)["content"]
    assert content["type"] == "anime_episode"
    assert content["external_ids"] == {"anidb": 17617}


def test_an_episode_in_an_anime_library_is_anime_whatever_its_ids() -> None:
    anime_home = source("jellyfin", mappings={JF_ALICE: ALICE}, anime_libraries=("Anime",))
    payload = jellyfin("PlaybackStart", EPISODE, LibraryNameByMaxPath="anime")
    assert published(payload, anime_home)["content"]["type"] == "anime_episode"
    other = jellyfin("PlaybackStart", EPISODE, LibraryNameByMaxPath="Shows")
    assert published(other, anime_home)["content"]["type"] == "episode"


def test_user_data_saved_toggle_played_is_mark_watched_dated_last_played() -> None:
    payload = jellyfin(
        "UserDataSaved",
        MOVIE,
        SaveReason="TogglePlayed",
        Played=True,
        PlayCount=1,
        LastPlayedDate="2026-11-20T20:00:00.0000000Z",
        PlaybackPositionTicks=0,
    )
    event = published(payload, HOME)
    assert event["action"] == "mark_watched"
    assert event["watched_at"] == "2026-11-20T20:00:00Z"
    assert "position_ms" not in event


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"SaveReason": "TogglePlayed", "Played": False}, "marked unplayed"),
        ({"SaveReason": "PlaybackFinished", "Played": True}, "by playback"),
        ({"SaveReason": "PlaybackProgress", "Played": False}, "by playback"),
        ({"Played": True}, "without SaveReason"),
        ({"SaveReason": "UpdateUserRating", "Rating": 0}, "no rating"),
        ({"SaveReason": "UpdateUserRating", "Favorite": True}, "no rating"),
        ({"SaveReason": "Import", "Played": True}, "changes nothing"),
    ],
)
def test_user_data_saved_that_is_no_mark_or_rating_is_ignored(
    fields: dict[str, Any], reason: str
) -> None:
    result = outcome(jellyfin("UserDataSaved", MOVIE, **fields), HOME)
    assert isinstance(result, Ignored)
    assert reason in result.reason


def test_user_data_saved_rating_is_rate() -> None:
    payload = jellyfin("UserDataSaved", MOVIE, SaveReason="UpdateUserRating", Rating=8.5)
    event = published(payload, HOME)
    assert (event["action"], event["rating"]) == ("rate", 8.5)


@pytest.mark.parametrize(
    "notification", ["ItemAdded", "SessionStart", "AuthenticationSuccess", "Generic"]
)
def test_notifications_that_are_no_playback_are_ignored(notification: str) -> None:
    assert isinstance(outcome({"NotificationType": notification, **SERVER}, HOME), Ignored)


@pytest.mark.parametrize("item_type", ["Trailer", "MusicVideo", "TvChannel", "AudioBook"])
def test_items_that_are_no_movie_episode_or_track_are_ignored(item_type: str) -> None:
    payload = jellyfin("PlaybackStart", {**MOVIE, "ItemType": item_type})
    assert isinstance(outcome(payload, HOME), Ignored)


def test_a_template_that_writes_everything_as_text_is_read() -> None:
    movie = {**MOVIE, "Year": "1995", "RunTimeTicks": "102000000000"}
    payload = jellyfin(
        "PlaybackProgress", movie, PlaybackPositionTicks="51000000000", IsPaused="false"
    )
    event = published(payload, HOME)
    assert event["position_ms"] == 5_100_000
    assert event["content"]["duration_ms"] == 10_200_000
    assert event["content"]["year"] == 1995


def test_run_time_text_stands_in_for_missing_ticks() -> None:
    movie = {**MOVIE, "RunTimeTicks": 0, "RunTime": "01:30:15"}
    content = published(jellyfin("PlaybackStart", movie), HOME)["content"]
    assert content["duration_ms"] == 5_415_000


def test_json_escapes_in_names_are_read() -> None:
    raw = '{"NotificationType":"PlaybackStart","ItemType":"Movie","ItemId":"x1",'
    raw += '"Name":"Ocean\\u0027s Eleven \\u002B \\u00B2","UserId":"' + JF_ALICE + '"}'
    event = published(json.loads(raw), HOME)
    assert event["content"]["title"] == "Ocean's Eleven + ²"


def test_a_handlebars_rendered_timestamp_is_read_as_utc() -> None:
    payload = jellyfin("PlaybackStart", MOVIE, UtcTimestamp="11/20/2026 9:04:05 PM")
    assert published(payload, HOME)["occurred_at"] == "2026-11-20T21:04:05Z"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"ItemType": "Movie", "Name": "Heat"}, "NotificationType"),
        ({"NotificationType": "PlaybackStart", "Name": "Heat"}, "ItemType"),
        ({"NotificationType": "PlaybackStart", "ItemType": "Movie"}, "Name"),
        ({"NotificationType": "PlaybackStop", "ItemType": "Movie", "Name": "Heat"}, "Position"),
    ],
)
def test_unusable_payloads_name_what_is_missing(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(Unusable) as raised:
        outcome({**payload, "UserId": JF_ALICE}, HOME)
    assert problem in str(raised.value)


def test_a_video_pause_with_no_length_and_no_share_is_unusable() -> None:
    movie = {k: v for k, v in MOVIE.items() if not k.startswith("RunTime")}
    payload = jellyfin("PlaybackProgress", movie, IsPaused=True, PlaybackPositionTicks=10)
    with pytest.raises(Unusable) as raised:
        outcome(payload, HOME)
    assert "duration_ms" in str(raised.value)


# --- server users ---------------------------------------------------------------------------


def test_users_map_by_id_in_either_spelling_or_by_name() -> None:
    dashed = jellyfin("PlaybackStart", MOVIE, UserId=JF_ALICE.upper())
    assert published(dashed, HOME)["user_id"] == str(ALICE)
    by_name = jellyfin("PlaybackStart", MOVIE, UserId=JF_BOB, NotificationUsername="BOB")
    assert published(by_name, HOME)["user_id"] == str(BOB)


def test_an_unmapped_server_user_is_skipped() -> None:
    stranger = jellyfin("PlaybackStart", MOVIE, UserId=JF_BOB, NotificationUsername="carol")
    assert outcome(stranger, HOME) == Skip("unmapped")


def test_a_personal_source_gives_every_play_to_its_owner() -> None:
    personal = source("jellyfin")
    stranger = jellyfin("PlaybackStart", MOVIE, UserId=JF_BOB, NotificationUsername="carol")
    assert published(stranger, personal)["user_id"] == str(OWNER)


def test_an_operator_source_without_mappings_maps_nobody() -> None:
    shared = source("jellyfin", owner=None)
    assert outcome(jellyfin("PlaybackStart", MOVIE), shared) == Skip("unmapped")


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "fields", "reason"),
    [
        ({"deny_libraries": ("Kids",)}, {"LibraryNameByMaxPath": "kids"}, "library"),
        ({"allow_libraries": ("Films",)}, {"LibraryNameByMaxPath": "Shows"}, "library"),
        ({"allow_libraries": ("Films",)}, {}, "library"),  # the payload names no library
        ({"deny_server_users": ("alice",)}, {}, "server_user"),
        ({"allow_server_users": ("bob",)}, {}, "server_user"),
        ({"min_duration_s": 3 * 3600}, {}, "too_short"),
    ],
)
def test_filters_keep_plays_out(
    filters: dict[str, Any], fields: dict[str, Any], reason: str
) -> None:
    filtered = source("jellyfin", mappings={JF_ALICE: ALICE}, **filters)
    assert outcome(jellyfin("PlaybackStart", MOVIE, **fields), filtered) == Skip(reason)


@pytest.mark.parametrize(
    ("filters", "fields"),
    [
        ({"deny_libraries": ("Kids",)}, {}),  # unknown library: a deny list lets it through
        ({"allow_libraries": ("films",)}, {"LibraryNameByMaxPath": "Films"}),
        ({"allow_server_users": (JF_ALICE.replace("-", ""),)}, {}),
        ({"min_duration_s": 60}, {}),
    ],
)
def test_filters_let_plays_through(filters: dict[str, Any], fields: dict[str, Any]) -> None:
    filtered = source("jellyfin", mappings={JF_ALICE: ALICE}, **filters)
    assert published(jellyfin("PlaybackStart", MOVIE, **fields), filtered)["user_id"] == str(ALICE)


# --- ids ------------------------------------------------------------------------------------


def test_a_resent_webhook_is_the_same_event() -> None:
    payload = jellyfin("PlaybackProgress", MOVIE, PlaybackPositionTicks=10_000_000)
    first = published(payload, HOME)
    again = published(dict(payload), HOME, RECEIVED + timedelta(minutes=5))
    assert again == first


@pytest.mark.parametrize(
    "change",
    [
        {"PlaybackPositionTicks": 20_000_000},
        {"UtcTimestamp": "2026-11-20T21:04:15.0000000Z"},
        {"UserId": JF_BOB, "NotificationUsername": "bob"},
        {"ItemId": "f" * 32},
        {"NotificationType": "PlaybackStop"},
    ],
)
def test_events_that_differ_have_other_ids(change: dict[str, Any]) -> None:
    payload = jellyfin("PlaybackProgress", MOVIE, PlaybackPositionTicks=10_000_000)
    first = published(payload, HOME)["event_id"]
    assert published({**payload, **change}, HOME)["event_id"] != first


def test_without_a_timestamp_the_arrival_time_dates_it_and_buckets_its_id() -> None:
    payload = jellyfin("PlaybackStart", MOVIE)
    del payload["UtcTimestamp"], payload["Timestamp"]
    first = published(payload, HOME, RECEIVED)
    assert first["occurred_at"] == "2026-11-20T21:05:00Z"
    assert (
        published(payload, HOME, RECEIVED + timedelta(seconds=20))["event_id"]
        == (first["event_id"])
    )
    assert (
        published(payload, HOME, RECEIVED + timedelta(seconds=31))["event_id"]
        != (first["event_id"])
    )


def test_another_source_gives_other_ids_for_the_same_item() -> None:
    from dataclasses import replace
    from uuid import uuid4

    payload = jellyfin("PlaybackStart", MOVIE)
    other = replace(HOME, id=uuid4())
    mine, theirs = published(payload, HOME), published(payload, other)
    assert mine["event_id"] != theirs["event_id"]
    assert mine["content"]["id"] != theirs["content"]["id"]
