"""Emby webhook payloads (the JSON body, or the ``data`` form field) to PlaybackEvent v1."""

from __future__ import annotations

from typing import Any

import pytest

from scrobble_intake.translate import Ignored, Skip, Unusable
from tests.unit.intake import items
from tests.unit.intake.support import (
    ALICE,
    item_id,
    outcome,
    published,
    session_id,
    source,
)

EMBY_ALICE = "8d5e2f1a9b3c4d6e7f8091a2b3c4d5e6"
MOVIE: dict[str, Any] = {
    "Name": "Heat",
    "OriginalTitle": "Heat",
    "ServerId": "srv",
    "Id": "123456",
    "Type": "Movie",
    "ProductionYear": 1995,
    "RunTimeTicks": 102_000_000_000,
    "ProviderIds": {"Imdb": "tt0113277", "Tmdb": "949", "Official Website": "https://heat"},
}
EPISODE: dict[str, Any] = {
    "Name": "Good News About Hell",
    "Id": "223344",
    "Type": "Episode",
    "ProductionYear": 2022,
    "RunTimeTicks": 34_200_000_000,
    "SeriesName": "Severance",
    "SeriesId": "223300",
    "ParentIndexNumber": 1,
    "IndexNumber": 1,
    "ProviderIds": {"IMDB": "tt11650328", "Tvdb": "8472645"},
}
TRACK: dict[str, Any] = {
    "Name": "Windowlicker",
    "Id": "334455",
    "Type": "Audio",
    "RunTimeTicks": 3_670_000_000,
    "Artists": ["Aphex Twin"],
    "Album": "Windowlicker",
    "AlbumArtist": "Aphex Twin",
    "IndexNumber": 1,
    "ParentIndexNumber": 1,  # the disc, not a season
    "ProviderIds": {"MusicBrainzTrack": "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"},
}


def emby(
    event: str, item: dict[str, Any], position_ticks: int | None = 0, **top: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Title": "Alice is playing Heat on Living room",
        "Description": "",
        "Date": "2026-11-20T21:04:05.0000000Z",
        "Event": event,
        "User": {"Name": "Alice", "Id": EMBY_ALICE},
        "Item": item,
        "Server": {"Name": "Attic", "Id": "srv", "Version": "4.8.10.0"},
    }
    if event.startswith("playback."):
        body["Session"] = {
            "Id": "sess-17",
            "DeviceId": "dev-9",
            "DeviceName": "Living room",
            "Client": "Emby Theater",
            "ApplicationVersion": "3.0.20",
        }
        body["PlaybackInfo"] = {"PlaySessionId": "ps-42", "PlaylistIndex": 0, "PlaylistLength": 1}
        if position_ticks is not None:
            body["PlaybackInfo"]["PositionTicks"] = position_ticks
    body.update(top)
    return body


HOME = source("emby", mappings={EMBY_ALICE: ALICE})


def test_playback_start_of_a_movie_field_by_field() -> None:
    event = published(emby("playback.start", MOVIE), HOME)
    event.pop("event_id")
    assert event == {
        "schema_version": 1,
        "user_id": str(ALICE),
        "session_id": session_id("ps-42"),
        "action": "start",
        "occurred_at": "2026-11-20T21:04:05Z",
        "position_ms": 0,
        "content": {
            **items.HEAT,
            "id": item_id("123456"),
            "external_ids": {"imdb": "tt0113277", "tmdb": 949},
        },
        "client": {"name": "Emby Theater", "version": "3.0.20", "device": "Living room"},
    }


@pytest.mark.parametrize(
    ("name", "action"),
    [("playback.pause", "pause"), ("playback.unpause", "resume"), ("playback.stop", "stop")],
)
def test_pause_unpause_stop_carry_the_position(name: str, action: str) -> None:
    event = published(emby(name, MOVIE, position_ticks=96_900_000_000), HOME)
    assert (event["action"], event["position_ms"]) == (action, 9_690_000)


def test_an_episode_matches_provider_ids_whatever_their_case() -> None:
    event = published(emby("playback.stop", EPISODE, position_ticks=32_490_000_000), HOME)
    assert event["content"] == {
        **items.GOOD_NEWS_ABOUT_HELL,
        "id": item_id("223344"),
        "year": 2022,
        "show": {"title": "Severance"},
        "external_ids": {"imdb": "tt11650328", "tvdb": 8472645},
    }


def test_a_track_carries_artists_album_number_and_recording() -> None:
    content = published(emby("playback.start", TRACK), HOME)["content"]
    assert content == {
        **items.WINDOWLICKER,
        "id": item_id("334455"),
        "album_artist": "Aphex Twin",
        "track_number": 1,
        "external_ids": {"musicbrainz_recording": "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"},
    }


def test_artist_items_stand_in_for_missing_artists() -> None:
    track = {**TRACK, "Artists": [], "ArtistItems": [{"Name": "Autechre", "Id": "9"}]}
    assert published(emby("playback.start", track), HOME)["content"]["artists"] == ["Autechre"]


def test_mark_played_is_mark_watched_dated_last_played() -> None:
    marked = {
        **MOVIE,
        "UserData": {
            "Played": True,
            "PlayCount": 1,
            "PlaybackPositionTicks": 0,
            "LastPlayedDate": "2026-11-19T20:00:00.0000000Z",
        },
    }
    event = published(emby("item.markplayed", marked), HOME)
    assert event["action"] == "mark_watched"
    assert event["watched_at"] == "2026-11-19T20:00:00Z"
    assert "session_id" not in event
    assert "position_ms" not in event


def test_mark_played_without_a_date_is_dated_by_the_webhook() -> None:
    event = published(emby("item.markplayed", {**MOVIE, "UserData": {"Played": True}}), HOME)
    assert event["watched_at"] == "2026-11-20T21:04:05Z"


def test_rate_needs_a_rating() -> None:
    rated = {**MOVIE, "UserData": {"Rating": 7, "IsFavorite": False}}
    event = published(emby("item.rate", rated), HOME)
    assert (event["action"], event["rating"]) == ("rate", 7.0)
    liked = {**MOVIE, "UserData": {"Likes": True, "IsFavorite": True}}
    assert isinstance(outcome(emby("item.rate", liked), HOME), Ignored)


@pytest.mark.parametrize(
    "name", ["item.markunplayed", "library.new", "system.notificationtest", "user.authenticated"]
)
def test_events_that_are_no_playback_are_ignored(name: str) -> None:
    assert isinstance(outcome(emby(name, MOVIE), HOME), Ignored)


def test_the_device_session_stands_in_for_a_missing_play_session() -> None:
    payload = emby("playback.start", MOVIE)
    del payload["PlaybackInfo"]["PlaySessionId"]
    assert published(payload, HOME)["session_id"] == session_id("sess-17|123456")


def test_a_start_without_position_starts_at_zero_a_stop_without_is_unusable() -> None:
    assert published(emby("playback.start", MOVIE, position_ticks=None), HOME)["position_ms"] == 0
    with pytest.raises(Unusable) as raised:
        outcome(emby("playback.stop", MOVIE, position_ticks=None), HOME)
    assert "PositionTicks" in str(raised.value)


def test_users_map_by_name_too_and_strangers_are_skipped() -> None:
    by_name = source("emby", mappings={"alice": ALICE})
    assert published(emby("playback.start", MOVIE), by_name)["user_id"] == str(ALICE)
    stranger = emby("playback.start", MOVIE, User={"Name": "Mallory", "Id": "ffff"})
    assert outcome(stranger, HOME) == Skip("unmapped")


def test_a_resent_webhook_is_the_same_event_and_a_later_one_is_not() -> None:
    first = published(emby("playback.stop", MOVIE, position_ticks=10), HOME)["event_id"]
    assert published(emby("playback.stop", MOVIE, position_ticks=10), HOME)["event_id"] == first
    later = emby("playback.stop", MOVIE, position_ticks=10, Date="2026-11-20T21:09:05Z")
    assert published(later, HOME)["event_id"] != first


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"Item": MOVIE}, "Event"),
        ({"Event": "playback.start"}, "Item"),
        ({"Event": "playback.start", "Item": {"Name": "Heat"}}, "Item.Type"),
        ({"Event": "playback.start", "Item": {"Type": "Movie"}}, "Item.Name"),
    ],
)
def test_unusable_payloads_name_what_is_missing(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(Unusable) as raised:
        outcome(payload, HOME)
    assert problem in str(raised.value)
