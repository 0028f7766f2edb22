"""External-id resolution, the pure half: each service's plan, requests and reading of
answers (shaped as the services write them), exact matching, and the request the client
then builds from the resolved item."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from graphql import build_schema, parse, validate

from scrobble_sandbox.anilist.schema import anilist_schema
from scrobble_shared.events import Content
from scrobble_shared.trackers.anilist.client import AniListClient
from scrobble_shared.trackers.anilist.ids import MEDIA_SEARCH, AniListResolver
from scrobble_shared.trackers.http import AppCredentials, HttpResponse, UserCredentials
from scrobble_shared.trackers.ids import (
    Found,
    Lookup,
    NotFound,
    Plan,
    Ready,
    UnexpectedAnswer,
    normalise_title,
    with_ids,
)
from scrobble_shared.trackers.registry import TRACKERS
from scrobble_shared.trackers.simkl.client import SimklClient
from scrobble_shared.trackers.simkl.ids import SimklResolver
from scrobble_shared.trackers.trakt.client import TraktClient
from scrobble_shared.trackers.trakt.ids import TraktResolver
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

USER = UserCredentials("user-token")
APP = AppCredentials("client-id", "secret")
TRAKT = TraktResolver("https://api.trakt.tv", APP)
SIMKL = SimklResolver("https://api.simkl.com", APP)
ANILIST = AniListResolver("https://graphql.anilist.co")
CONN = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def content(kind: str = "movie", **fields: Any) -> Content:
    base: dict[str, Any] = {"type": kind, "id": str(uuid.uuid4()), "title": "Heat"}
    return Content.model_validate(base | fields)


def episode(show: dict[str, Any] | None, **fields: Any) -> Content:
    extra = {"season": 1, "number": 1, **fields}
    if show is not None:
        extra["show"] = show
    return content("episode", title="Pilot", **extra)


def anime(show: dict[str, Any] | None, **fields: Any) -> Content:
    extra = {"number": 1, **fields}
    if show is not None:
        extra["show"] = show
    return content("anime_episode", title="The Journey's End", **extra)


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def work(item: Content, kind: WorkKind = WorkKind.SCROBBLE, service: str = "trakt") -> ScrobbleWork:
    at = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    return scrobble_work(
        service, kind, item, at, connection_id=CONN, dedupe_key="k", progress_percent=95.0
    )


def only_lookup(plan: Plan) -> Lookup:
    [step] = plan.steps
    assert isinstance(step, Lookup)
    return step


# --- titles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Amélie", "amelie", True),
        ("The Matrix", "the  matrix", True),
        ("Frieren: Beyond Journey's End", "frieren beyond journey s end", True),
        ("Tom & Jerry", "Tom and Jerry", True),
        ("Heat", "Heat Wave", False),
        ("Heat", "The Heat", False),
    ],
)
def test_normalised_titles(a: str, b: str, same: bool) -> None:
    assert (normalise_title(a) == normalise_title(b)) is same


# --- Trakt ---------------------------------------------------------------------------------

HEAT_1995 = {"trakt": 1074, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949}
HEAT_1986 = {"trakt": 10239, "slug": "heat-1986", "imdb": "tt0093164", "tmdb": 31052}


def trakt_movies(*items: tuple[str, int, dict[str, Any]]) -> HttpResponse:
    return answer(
        [
            {"type": "movie", "score": 1000.0, "movie": {"title": t, "year": y, "ids": ids}}
            for t, y, ids in items
        ]
    )


def test_trakt_movie_with_ids_needs_no_lookup() -> None:
    plan = TRAKT.plan(content(external_ids={"tmdb": 949}))
    assert plan.steps == (Ready("movie ids Trakt accepts"),)


def test_trakt_title_and_year_resolve_by_exact_match_and_are_sent_by_ids() -> None:
    item = content(year=1995)
    lookup = only_lookup(TRAKT.plan(item))
    request = TRAKT.build(lookup, USER)
    assert request.method == "GET"
    assert request.url == "https://api.trakt.tv/search/movie"
    assert request.params == {"query": "Heat", "years": "1995", "limit": "10"}
    assert request.headers["trakt-api-key"] == "client-id"
    assert request.headers["trakt-api-version"] == "2"
    found = TRAKT.parse(lookup, trakt_movies(("Heat", 1995, HEAT_1995), ("Heat", 1986, HEAT_1986)))
    assert found == Found(
        {"trakt": 1074, "trakt_slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949}
    )
    resolved = with_ids(item, lookup.target, found.ids)
    body = TraktClient("https://api.trakt.tv", APP).build(work(resolved), USER).json
    assert body["movie"] == {"title": "Heat", "year": 1995, "ids": HEAT_1995}


@pytest.mark.parametrize(
    ("results", "why"),
    [
        ([("Heat", 1986, HEAT_1986)], "another year"),
        ([("Heat Wave", 1995, {"trakt": 5})], "extra words"),
        ([("The Heat", 1995, {"trakt": 6})], "extra words in front"),
        ([("Heat", 1995, {"trakt": 1}), ("Heat", 1995, {"trakt": 2})], "two equal candidates"),
        ([], "nothing"),
    ],
)
def test_trakt_near_matches_are_not_found(results: list[Any], why: str) -> None:
    lookup = only_lookup(TRAKT.plan(content(year=1995)))
    assert isinstance(TRAKT.parse(lookup, trakt_movies(*results)), NotFound), why


def test_trakt_movie_without_ids_or_year_is_unresolvable_at_once() -> None:
    plan = TRAKT.plan(content())
    assert plan.steps == ()
    assert plan.unresolved.startswith('not found at Trakt: movie "Heat": no id')


def test_trakt_episode_with_show_ids_is_sent_as_show_season_number() -> None:
    item = episode({"title": "Severance", "external_ids": {"tvdb": 371980}}, season=1, number=3)
    assert TRAKT.plan(item).steps == (Ready("show ids with season and number"),)
    body = TraktClient("https://api.trakt.tv", APP).build(work(item), USER).json
    assert body["show"] == {"title": "Severance", "ids": {"tvdb": 371980}}
    assert body["episode"] == {"season": 1, "number": 3}


def test_trakt_episode_show_by_title_and_year() -> None:
    item = episode({"title": "Breaking Bad", "year": 2008}, season=1, number=1)
    lookup = only_lookup(TRAKT.plan(item))
    assert (lookup.media, lookup.target) == ("show", "show")
    assert TRAKT.build(lookup, USER).url == "https://api.trakt.tv/search/show"
    show_ids = {"trakt": 1388, "slug": "breaking-bad", "tvdb": 81189, "imdb": "tt0903747"}
    found = TRAKT.parse(
        lookup,
        answer(
            [
                {
                    "type": "show",
                    "score": 1000,
                    "show": {"title": "Breaking Bad", "year": 2008, "ids": show_ids},
                }
            ]
        ),
    )
    assert isinstance(found, Found)
    body = (
        TraktClient("https://api.trakt.tv", APP)
        .build(work(with_ids(item, "show", found.ids)), USER)
        .json
    )
    assert body["show"]["ids"] == show_ids
    assert body["episode"] == {"season": 1, "number": 1}


def test_trakt_episode_imdb_id_is_looked_up_before_show_numbering() -> None:
    item = episode(
        {"title": "Breaking Bad", "external_ids": {"tvdb": 81189}},
        external_ids={"imdb": "tt0959621"},
    )
    plan = TRAKT.plan(item)
    assert isinstance(plan.steps[0], Lookup)
    assert plan.steps[1] == Ready("show ids with season and number")
    lookup = plan.steps[0]
    request = TRAKT.build(lookup, USER)
    assert request.url == "https://api.trakt.tv/search/imdb/tt0959621"
    assert request.params == {"type": "episode"}
    found = TRAKT.parse(
        lookup,
        answer(
            [
                {
                    "type": "episode",
                    "score": 1000,
                    "episode": {
                        "season": 1,
                        "number": 1,
                        "title": "Pilot",
                        "ids": {"trakt": 73482, "tvdb": 349232},
                    },
                    "show": {"title": "Breaking Bad", "year": 2008, "ids": {"trakt": 1388}},
                }
            ]
        ),
    )
    assert found == Found({"trakt": 73482, "tvdb": 349232})
    body = (
        TraktClient("https://api.trakt.tv", APP)
        .build(work(with_ids(item, "item", found.ids)), USER)
        .json
    )
    assert body == {"progress": 95.0, "episode": {"ids": {"trakt": 73482, "tvdb": 349232}}}


def test_trakt_answer_that_is_not_a_list_is_unexpected() -> None:
    lookup = only_lookup(TRAKT.plan(content(year=1995)))
    with pytest.raises(UnexpectedAnswer):
        TRAKT.parse(lookup, answer({"error": "x"}))


# --- Simkl ---------------------------------------------------------------------------------


def simkl_results(*items: tuple[str, int, int]) -> HttpResponse:
    return answer(
        [
            {
                "title": t,
                "year": y,
                "endpoint_type": "movies",
                "poster": "x",
                "ids": {"simkl_id": i, "slug": "s"},
            }
            for t, y, i in items
        ]
    )


def test_simkl_title_and_year_resolve_by_exact_match_and_are_sent_by_simkl_id() -> None:
    item = content(year=1995)
    lookup = only_lookup(SIMKL.plan(item))
    request = SIMKL.build(lookup, USER)
    assert request.url == "https://api.simkl.com/search/movie"
    assert request.params is not None
    assert request.params["q"] == "Heat"
    assert request.headers["simkl-api-key"] == "client-id"
    found = SIMKL.parse(lookup, simkl_results(("Heat", 1986, 94011), ("Heat", 1995, 53452)))
    assert found == Found({"simkl": 53452})
    body = (
        SimklClient("https://api.simkl.com", APP)
        .build(work(with_ids(item, "item", found.ids), service="simkl"), USER)
        .json
    )
    assert body["movie"] == {"title": "Heat", "year": 1995, "ids": {"simkl": 53452}}


@pytest.mark.parametrize(
    "results",
    [
        [("Heat", 1986, 94011)],
        [("Heat 2", 1995, 1)],
        [("Heat", 1995, 1), ("Heat", 1995, 2)],
        [],
    ],
)
def test_simkl_near_matches_are_not_found(results: list[tuple[str, int, int]]) -> None:
    lookup = only_lookup(SIMKL.plan(content(year=1995)))
    assert isinstance(SIMKL.parse(lookup, simkl_results(*results)), NotFound)


def test_simkl_empty_answer_is_not_found() -> None:
    lookup = only_lookup(SIMKL.plan(content(year=1995)))
    assert isinstance(SIMKL.parse(lookup, HttpResponse(200, {}, b"null")), NotFound)


def test_simkl_episode_with_show_ids_is_sent_as_show_season_number() -> None:
    item = episode({"title": "Severance", "external_ids": {"tvdb": 371980}}, season=1, number=2)
    assert SIMKL.plan(item).steps == (Ready("ids Simkl accepts"),)
    body = SimklClient("https://api.simkl.com", APP).build(work(item, service="simkl"), USER).json
    assert body["show"] == {"title": "Severance", "ids": {"tvdb": 371980}}
    assert body["episode"] == {"season": 1, "number": 2}


def test_simkl_show_title_search_names_the_show() -> None:
    item = episode({"title": "Breaking Bad", "year": 2008}, season=2, number=4)
    lookup = only_lookup(SIMKL.plan(item))
    assert SIMKL.build(lookup, USER).url == "https://api.simkl.com/search/tv"
    found = SIMKL.parse(lookup, simkl_results(("Breaking Bad", 2008, 11121)))
    assert isinstance(found, Found)
    body = (
        SimklClient("https://api.simkl.com", APP)
        .build(work(with_ids(item, "show", found.ids), service="simkl"), USER)
        .json
    )
    assert body["show"] == {"title": "Breaking Bad", "year": 2008, "ids": {"simkl": 11121}}
    assert body["episode"] == {"season": 2, "number": 4}


def test_simkl_anime_with_a_mal_id_needs_no_lookup_and_english_titles_match() -> None:
    assert SIMKL.plan(anime({"title": "Frieren", "external_ids": {"mal": 52991}})).steps == (
        Ready("ids Simkl accepts"),
    )
    item = anime({"title": "Frieren: Beyond Journey's End", "year": 2023})
    lookup = only_lookup(SIMKL.plan(item))
    assert SIMKL.build(lookup, USER).url == "https://api.simkl.com/search/anime"
    result = {
        "title": "Sousou no Frieren",
        "title_en": "Frieren: Beyond Journey's End",
        "year": 2023,
        "ids": {"simkl_id": 2185386},
    }
    assert SIMKL.parse(lookup, answer([result])) == Found({"simkl": 2185386})


def test_simkl_trakt_slug_goes_through_the_id_lookup_first() -> None:
    item = content(year=1995, external_ids={"trakt_slug": "heat-1995"})
    plan = SIMKL.plan(item)
    first, second = plan.steps
    assert isinstance(first, Lookup)
    assert isinstance(second, Lookup)
    assert (first.kind, second.kind) == ("id", "search")
    request = SIMKL.build(first, USER)
    assert request.url == "https://api.simkl.com/search/id"
    assert request.params is not None
    assert request.params["traktslug"] == "heat-1995"
    lookup_answer = answer(
        [{"type": "movie", "title": "Heat", "year": 1995, "ids": {"simkl": 53452}}]
    )
    assert SIMKL.parse(first, lookup_answer) == Found({"simkl": 53452})


# --- AniList -------------------------------------------------------------------------------


@cache
def schema() -> Any:
    return build_schema(anilist_schema_text())


def anilist_schema_text() -> str:
    from graphql import print_schema

    return print_schema(anilist_schema())


def test_media_search_validates_against_the_schema() -> None:
    assert validate(schema(), parse(MEDIA_SEARCH)) == []


def test_anime_with_only_a_mal_id_reaches_anilist_through_the_lookup() -> None:
    item = anime({"title": "Frieren", "external_ids": {"mal": 52991}})
    lookup = only_lookup(ANILIST.plan(item))
    request = ANILIST.build(lookup, USER)
    assert request.json["variables"] == {"idMal": 52991}
    found = ANILIST.parse(lookup, answer({"data": {"Media": {"id": 154587}}}))
    assert found == Found({"anilist": 154587, "mal": 52991})
    resolved = with_ids(item, lookup.target, found.ids)
    save = AniListClient("https://graphql.anilist.co").build(
        work(resolved, WorkKind.WATCHED, "anilist"), USER
    )
    assert save.json["variables"]["mediaId"] == 154587


def test_unknown_mal_id_is_not_found() -> None:
    lookup = only_lookup(ANILIST.plan(anime({"title": "X", "external_ids": {"mal": 9}})))
    body = {"data": {"Media": None}, "errors": [{"message": "Not Found.", "status": 404}]}
    assert isinstance(ANILIST.parse(lookup, answer(body, 404)), NotFound)


def search_answer(romaji: str, english: str | None, year: int | None) -> HttpResponse:
    media = {
        "id": 154587,
        "idMal": 52991,
        "title": {"romaji": romaji, "english": english, "native": None},
        "startDate": {"year": year},
    }
    return answer({"data": {"Media": media}})


def test_anilist_title_and_year_resolve_by_exact_match() -> None:
    item = anime({"title": "Frieren: Beyond Journey's End", "year": 2023})
    lookup = only_lookup(ANILIST.plan(item))
    request = ANILIST.build(lookup, USER)
    assert request.json == {
        "query": MEDIA_SEARCH,
        "variables": {"search": "Frieren: Beyond Journey's End"},
    }
    found = ANILIST.parse(
        lookup, search_answer("Sousou no Frieren", "Frieren: Beyond Journey's End", 2023)
    )
    assert found == Found({"anilist": 154587, "mal": 52991})


@pytest.mark.parametrize(
    ("romaji", "english", "year"),
    [
        ("Sousou no Frieren", "Frieren: Beyond Journey's End", 2024),  # another year
        ("Sousou no Frieren 2", "Frieren: Beyond Journey's End Season 2", 2023),  # more words
        ("Sousou no Frieren", "Frieren: Beyond Journey's End", None),  # no year known
    ],
)
def test_anilist_near_matches_are_not_found(romaji: str, english: str, year: int | None) -> None:
    lookup = only_lookup(
        ANILIST.plan(anime({"title": "Frieren: Beyond Journey's End", "year": 2023}))
    )
    assert isinstance(ANILIST.parse(lookup, search_answer(romaji, english, year)), NotFound)


def test_anilist_plan_prefers_its_own_id_then_mal_then_search() -> None:
    assert ANILIST.plan(anime({"title": "F", "external_ids": {"anilist": 1}})).steps == (
        Ready("AniList id"),
    )
    both = ANILIST.plan(anime({"title": "F", "year": 2023, "external_ids": {"mal": 5}}))
    assert [s.kind for s in both.steps if isinstance(s, Lookup)] == ["id", "search"]
    assert ANILIST.plan(anime({"title": "F"})).steps == ()


# --- music ---------------------------------------------------------------------------------


def test_music_services_have_no_resolver() -> None:
    # Last.fm and ListenBrainz take artist and track names: nothing to look up.
    with_resolver = {t.name for t in TRACKERS if t.resolver is not None}
    assert with_resolver == {"trakt", "simkl", "anilist"}


def test_with_ids_keeps_what_the_event_carries_and_drops_bad_values() -> None:
    item = content(year=1995, external_ids={"imdb": "tt0113277"})
    resolved = with_ids(item, "item", {"imdb": "tt999", "tmdb": 949, "simkl": "x", "nope": 1})
    assert resolved.external_ids is not None
    assert resolved.external_ids.model_dump(exclude_none=True) == {"imdb": "tt0113277", "tmdb": 949}
