"""The pure parts of history import: each service's page reader (requests and what an
answer says), the two-way sync rules, and the AniList documents against the schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graphql import parse, validate

from scrobble_dispatcher.imports import sync
from scrobble_shared.trackers.anilist import history as anilist
from scrobble_shared.trackers.history import (
    ImportedItem,
    ImportRefused,
    JobContext,
    UnexpectedAnswer,
    iso_utc,
)
from scrobble_shared.trackers.http import AppCredentials, HttpResponse, OutcomeKind
from scrobble_shared.trackers.lastfm.history import LastfmReader
from scrobble_shared.trackers.listenbrainz.history import ListenBrainzReader
from scrobble_shared.trackers.maloja.history import MalojaReader
from scrobble_shared.trackers.simkl.history import SimklReader
from scrobble_shared.trackers.trakt.history import TraktReader
from scrobble_shared.work import WorkKind
from tests.support.rules import rules_of
from tests.unit.dispatcher.test_anilist_client import schema

APP = AppCredentials("app-id", "app-secret")
UNTIL = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def ctx(since: datetime | None = None, user: str | None = "alice") -> JobContext:
    return JobContext(uuid.uuid4(), "tok", user, since, UNTIL)


def answer(body: Any, status: int = 200, **headers: str) -> HttpResponse:
    names = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return HttpResponse(status, names, json.dumps(body).encode())


# --- Trakt ---------------------------------------------------------------------------------


def test_trakt_pages_by_its_headers_with_a_fixed_end_then_reads_ratings() -> None:
    reader = TraktReader("https://api.trakt.example", APP)
    request = reader.request({"phase": "history", "page": 2}, ctx(SINCE))
    assert request.url == "https://api.trakt.example/sync/history"
    assert request.params == {
        "page": "2",
        "limit": "100",
        "end_at": iso_utc(UNTIL),
        "start_at": iso_utc(SINCE),
    }
    assert request.headers["trakt-api-version"] == "2"
    row = {
        "id": 1,
        "watched_at": "2026-01-05T20:00:00.000Z",
        "type": "episode",
        "episode": {"season": 1, "number": 3, "title": "Pilot", "ids": {"trakt": 73482}},
        "show": {"title": "Breaking Bad", "year": 2008, "ids": {"trakt": 1388, "tvdb": 81189}},
    }
    page = reader.read(
        {"phase": "history", "page": 2}, answer([row], x_pagination_page_count="3"), ctx()
    )
    assert page.next_cursor == {"phase": "history", "page": 3}
    [item] = page.items
    assert (item.item_key, item.occurred_at) == (
        "episode:trakt:73482",
        datetime(2026, 1, 5, 20, tzinfo=UTC),
    )
    assert item.show == {"title": "Breaking Bad", "year": 2008,
                         "external_ids": {"trakt": 1388, "tvdb": 81189}}  # fmt: skip
    last = reader.read(
        {"phase": "history", "page": 3}, answer([row], x_pagination_page_count="3"), ctx()
    )
    assert last.next_cursor == {"phase": "ratings"}
    old = {"rated_at": "2025-01-01T00:00:00Z", "rating": 8, "type": "movie",
           "movie": {"title": "Heat", "ids": {"trakt": 1074}}}  # fmt: skip
    new = dict(old, rated_at="2026-01-02T00:00:00Z")
    ratings = reader.read({"phase": "ratings"}, answer([old, new]), ctx(SINCE))
    assert [(r.kind, r.rating, r.occurred_at.year) for r in ratings.items] == [("rating", 8, 2026)]
    assert ratings.next_cursor is None


def test_trakt_429_waits_as_its_headers_say() -> None:
    reader = TraktReader("https://api.trakt.example", APP)
    outcome = reader.judge(answer({}, 429, retry_after="7"))
    assert outcome is not None
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.retry_after_s == 7.0
    assert reader.judge(answer([], 200)) is None
    expired = reader.judge(answer({}, 401))  # the runner refreshes the token and asks again
    assert expired is not None
    assert expired.kind is OutcomeKind.REFRESH
    refused = reader.judge(answer({}, 403))
    assert refused is not None
    assert refused.kind is OutcomeKind.RECONNECT


# --- Last.fm -------------------------------------------------------------------------------


def test_lastfm_skips_now_playing_and_pages_by_total_pages() -> None:
    reader = LastfmReader("https://ws.example/2.0/", APP)
    request = reader.request({"page": 4}, ctx(SINCE))
    assert request.params is not None
    assert {k: request.params[k] for k in ("method", "user", "limit", "page", "from", "to")} == {
        "method": "user.getrecenttracks",
        "user": "alice",
        "limit": "200",
        "page": "4",
        "from": str(int(SINCE.timestamp())),
        "to": str(int(UNTIL.timestamp())),
    }
    playing = {"artist": {"#text": "Aphex Twin"}, "name": "Xtal", "@attr": {"nowplaying": "true"}}
    played = {"artist": {"#text": "Aphex Twin"}, "name": "Xtal", "mbid": "",
              "album": {"#text": "SAW"}, "date": {"uts": "1767000000"}}  # fmt: skip
    body = {"recenttracks": {"track": [playing, played],
                             "@attr": {"page": "1", "totalPages": "2"}}}  # fmt: skip
    page = reader.read({"page": 1}, answer(body), ctx())
    assert [(i.title, i.artists, i.occurred_at.timestamp()) for i in page.items] == [
        ("Xtal", ("Aphex Twin",), 1767000000)
    ]
    assert page.skipped == 1
    assert page.next_cursor == {"page": 2}
    assert reader.read({"page": 2}, answer(body), ctx()).next_cursor is None


def test_lastfm_errors_in_the_body() -> None:
    reader = LastfmReader("https://ws.example/2.0/", APP)
    limited = reader.judge(answer({"error": 29, "message": "Rate limit"}, 429))
    assert limited is not None
    assert limited.kind is OutcomeKind.RETRY
    assert limited.retry_after_s is not None
    gone = reader.judge(answer({"error": 6, "message": "User not found"}, 400))
    assert gone is not None
    assert gone.kind is OutcomeKind.PERMANENT
    with pytest.raises(ImportRefused):
        reader.start(ctx(user=None))


# --- ListenBrainz --------------------------------------------------------------------------


def listens(*stamps: int) -> dict[str, Any]:
    return {
        "payload": {
            "listens": [
                {"listened_at": s, "track_metadata": {"artist_name": "A", "track_name": f"T{s}"}}
                for s in stamps
            ]
        }
    }


def test_listenbrainz_pages_backwards_by_max_ts() -> None:
    reader = ListenBrainzReader("https://lb.example/1", count=3)
    start = reader.start(ctx())
    assert start == {"max_ts": int(UNTIL.timestamp()) + 1}
    request = reader.request({"max_ts": 500}, ctx(SINCE))
    assert request.url == "https://lb.example/1/user/alice/listens"
    assert request.params == {
        "count": "3",
        "max_ts": "500",
        "min_ts": str(int(SINCE.timestamp()) - 1),
    }
    assert request.headers["Authorization"] == "Token tok"
    assert reader.read({"max_ts": 500}, answer(listens(400, 300, 200)), ctx()).next_cursor == {
        "max_ts": 201
    }
    # A whole page of one second would never move on with +1: below that second, then.
    assert reader.read({"max_ts": 301}, answer(listens(300, 300, 300)), ctx()).next_cursor == {
        "max_ts": 300
    }
    assert reader.read({"max_ts": 500}, answer(listens(400)), ctx()).next_cursor is None


# --- Maloja -------------------------------------------------------------------------------


def own_server(since: datetime | None = None) -> JobContext:
    return JobContext(uuid.uuid4(), "key", None, since, UNTIL, "http://192.168.1.20:42010/")


def scrobbles(*stamps: int, extra: list[Any] | None = None) -> dict[str, Any]:
    listed: list[Any] = [
        {
            "time": s,
            "track": {
                "artists": ["Björk", "Thom Yorke"],
                "title": f"T{s}",
                "album": {"artists": ["Björk"], "albumtitle": "Selmasongs"},
                "length": None,
            },
            "duration": None,
            "origin": "client:default",
        }
        for s in stamps
    ]
    return {"status": "ok", "list": listed + (extra or []), "pagination": {}}


def test_maloja_pages_by_number_on_the_connections_own_server_between_days() -> None:
    reader = MalojaReader("http://localhost:42010", per_page=3)
    assert reader.start(own_server()) == {"page": 0}
    first = reader.request({"page": 0}, own_server())
    assert first.url == "http://192.168.1.20:42010/apis/mlj_1/scrobbles"
    # Days, a day wider than the job either side (the server's offset is unknown); without
    # a since, from the start of time (Maloja lists nothing older than its start without).
    assert first.params == {"page": "0", "perpage": "3", "from": "1970/1/1", "to": "2026/1/11"}
    assert "Authorization" not in first.headers  # the list is public: no key goes out
    later = reader.request({"page": 4}, own_server(SINCE))
    assert later.params == {"page": "4", "perpage": "3", "from": "2025/12/31", "to": "2026/1/11"}
    configured = reader.request({"page": 0}, ctx())  # a connection naming no server
    assert configured.url == "http://localhost:42010/apis/mlj_1/scrobbles"


def test_maloja_keeps_the_jobs_moments_and_stops_below_since() -> None:
    reader = MalojaReader("http://localhost:42010", per_page=3)
    until, since = int(UNTIL.timestamp()), int(SINCE.timestamp())
    full = reader.read({"page": 0}, answer(scrobbles(until + 60, until, until - 60)), own_server())
    # Newer than the job's end: the next job's. A full page: there may be more.
    assert [i.title for i in full.items] == [f"T{until}", f"T{until - 60}"]
    assert full.next_cursor == {"page": 1}
    [item] = full.items[:1]
    assert (item.artists, item.album, item.occurred_at) == (
        ("Björk", "Thom Yorke"),
        "Selmasongs",
        UNTIL,
    )
    assert item.item_key == f"track:björk, thom yorke\x1ft{until}"
    short = reader.read({"page": 1}, answer(scrobbles(until - 120)), own_server())
    assert short.next_cursor is None
    below = reader.read(
        {"page": 2}, answer(scrobbles(since + 1, since, since - 1)), own_server(SINCE)
    )
    assert [i.title for i in below.items] == [f"T{since + 1}", f"T{since}"]
    assert below.next_cursor is None  # a full page, but it reaches below since


def test_maloja_skips_what_is_no_listen_and_refuses_what_is_no_list() -> None:
    reader = MalojaReader("http://localhost:42010", per_page=10)
    odd = [
        "text",
        {"time": "1767225600", "track": {"artists": ["A"], "title": "T"}},
        {"time": 1767225600, "track": {"artists": [], "title": "T"}},
        {"time": 1767225600, "track": {"artists": ["A"], "title": " "}},
        {"time": True, "track": {"artists": ["A"], "title": "T"}},
    ]
    page = reader.read({"page": 0}, answer(scrobbles(1767225600, extra=odd)), own_server())
    assert (len(page.items), page.skipped, page.items[0].album) == (1, 5, "Selmasongs")
    with pytest.raises(UnexpectedAnswer):
        reader.read({"page": 0}, answer({"status": "ok"}), own_server())
    with pytest.raises(UnexpectedAnswer):
        reader.read({"page": 0}, HttpResponse(200, {}, b"<html>Maloja</html>"), own_server())


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (500, OutcomeKind.RETRY),
        (503, OutcomeKind.RETRY),
        (404, OutcomeKind.PERMANENT),
        (401, OutcomeKind.RECONNECT),
    ],
)
def test_maloja_judges_its_answers(status: int, kind: OutcomeKind | None) -> None:
    outcome = MalojaReader("http://localhost:42010").judge(answer({}, status))
    assert (outcome.kind if outcome is not None else None) is kind


# --- Simkl ---------------------------------------------------------------------------------


def test_simkl_reads_activities_then_all_items_since_the_last_import() -> None:
    reader = SimklReader("https://api.simkl.example", APP)
    assert reader.start(ctx()) == {"step": "activities"}
    unchanged = answer({"all": "2025-12-01T00:00:00Z"})
    assert reader.read({"step": "activities"}, unchanged, ctx(SINCE)).next_cursor is None
    changed = answer({"all": "2026-01-05T00:00:00Z"})
    after = reader.read({"step": "activities"}, changed, ctx(SINCE)).next_cursor
    assert after == {"step": "items", "type": "movies"}
    request = reader.request(after, ctx(SINCE))
    assert request.url == "https://api.simkl.example/sync/all-items/movies"
    assert request.params is not None
    assert request.params["date_from"] == iso_utc(SINCE)
    first = reader.request(after, ctx())
    assert first.params is not None
    assert "date_from" not in first.params
    movies = {
        "movies": [
            {"last_watched_at": "2026-01-03T10:00:00Z", "user_rating": 9,
             "user_rated_at": "2026-01-03T11:00:00Z",
             "movie": {"title": "Heat", "year": 1995, "ids": {"simkl": 53452, "tmdb": "949"}}}
        ]
    }  # fmt: skip
    page = reader.read(after, answer(movies), ctx())
    assert [(i.kind, i.rating, i.external_ids) for i in page.items] == [
        ("play", None, {"simkl": 53452, "tmdb": 949}),
        ("rating", 9, {"simkl": 53452, "tmdb": 949}),
    ]
    assert page.next_cursor == {"step": "items", "type": "shows"}
    empty = reader.read({"step": "items", "type": "anime"}, answer(None), ctx())
    assert (empty.items, empty.next_cursor) == ([], None)


# --- AniList -------------------------------------------------------------------------------


@pytest.mark.parametrize("document", anilist.ALL_DOCUMENTS)
def test_anilist_import_documents_are_valid_against_the_schema(document: str) -> None:
    assert validate(schema(), parse(document)) == []


def test_anilist_stops_at_the_chunk_that_reaches_past_since() -> None:
    reader = anilist.AniListReader("https://graphql.example")
    viewer = reader.read({"step": "viewer"}, answer({"data": {"Viewer": {"id": 7}}}), ctx())
    assert viewer.next_cursor == {"step": "chunk", "user_id": 7, "chunk": 1}
    entry = {"mediaId": 5, "progress": 3, "score": 8, "updatedAt": int(SINCE.timestamp()) + 60,
             "media": {"idMal": 9, "title": {"romaji": "R", "english": "E"}}}  # fmt: skip
    old = dict(entry, mediaId=6, updatedAt=int(SINCE.timestamp()) - 60)
    body = {"data": {"MediaListCollection": {"hasNextChunk": True,
                                             "lists": [{"entries": [entry, old]}]}}}  # fmt: skip
    page = reader.read(viewer.next_cursor or {}, answer(body), ctx(SINCE))
    assert [(i.kind, i.item_key, i.rating, i.progress) for i in page.items] == [
        ("list_entry", "anime:anilist:5", None, 3),
        ("rating", "anime:anilist:5", 8, None),
    ]
    assert page.next_cursor is None  # the chunk reached back past since
    full = reader.read(viewer.next_cursor or {}, answer(body), ctx())
    assert full.next_cursor == {"step": "chunk", "user_id": 7, "chunk": 2}


# --- two-way sync --------------------------------------------------------------------------


def movie_play(at: datetime) -> ImportedItem:
    return ImportedItem(
        kind="play",
        content_type="movie",
        item_key="movie:trakt:16662",
        occurred_at=at,
        title="Inception",
        external_ids={"trakt": 16662, "tmdb": 27205, "imdb": "tt1375666"},
        year=2010,
    )


def test_an_imported_play_becomes_history_work_for_other_connections_only() -> None:
    at = datetime(2025, 5, 1, 21, tzinfo=UTC)
    item = movie_play(at)
    source = rules_of("trakt", sync_watch_status=True)
    simkl = rules_of("simkl", sync_watch_status=True)
    quiet = rules_of("simkl")  # does not sync watch status
    music = rules_of("lastfm", sync_watch_status=True)
    content = sync.content_of("trakt", item)
    event = sync.event_of(uuid.uuid4(), "trakt", item, content)
    assert event is not None
    works = sync.sync_work(source, [source, simkl, quiet, music], event, item)
    assert [(w.connection_id, w.kind, w.occurred_at) for w in works] == [
        (simkl.id, WorkKind.WATCHED, at)
    ]
    assert works[0].dedupe_key == f"import:trakt:play:movie:trakt:16662:{at.isoformat()}"
    # The same import twice is the same work.
    again = sync.sync_work(source, [simkl], event, item)
    assert again == works


def test_same_item_by_ids_or_by_show_season_and_number() -> None:
    item = sync.content_of("trakt", movie_play(datetime(2025, 5, 1, tzinfo=UTC)))
    from_ingest = {"type": "movie", "id": str(uuid.uuid4()), "external_ids": {"tmdb": 27205}}
    assert sync.same_item(item, from_ingest)
    assert not sync.same_item(item, dict(from_ingest, external_ids={"tmdb": 1}))
    assert not sync.same_item(item, dict(from_ingest, type="episode"))
    episode = {
        "type": "episode",
        "season": 1,
        "number": 2,
        "show": {"external_ids": {"tvdb": 81189}},
    }
    other = {"type": "anime_episode", "number": 2, "show": {"external_ids": {"tvdb": 81189}}}
    assert sync.same_item(episode, other)
    assert not sync.same_item(episode, dict(other, number=3))


def test_ratings_sync_only_where_ratings_sync() -> None:
    at = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=1)
    rating = ImportedItem(
        kind="rating", content_type="movie", item_key="movie:simkl:1", occurred_at=at,
        title="Heat", external_ids={"simkl": 1, "tmdb": 949}, rating=9,
    )  # fmt: skip
    source = rules_of("simkl", sync_ratings=True)
    trakt = rules_of("trakt", sync_ratings=True)
    watch_only = rules_of("anilist", sync_watch_status=True)
    event = sync.event_of(uuid.uuid4(), "simkl", rating, sync.content_of("simkl", rating))
    assert event is not None
    works = sync.sync_work(source, [trakt, watch_only], event, rating)
    assert [(w.service, w.kind, w.rating) for w in works] == [("trakt", WorkKind.RATING, 9)]
