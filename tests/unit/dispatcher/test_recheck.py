"""The "is it there already?" questions (recheck.py) as plain values: what is asked, and
what each answer says, for Trakt and Simkl history adds and Last.fm scrobbles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from scrobble_shared.trackers.http import (
    AppCredentials,
    HttpResponse,
    UserCredentials,
)
from scrobble_shared.trackers.lastfm.recheck import LastfmRecheck
from scrobble_shared.trackers.recheck import NoAnswer
from scrobble_shared.trackers.simkl.recheck import SimklRecheck
from scrobble_shared.trackers.trakt.client import TraktClient
from scrobble_shared.trackers.trakt.recheck import TraktRecheck
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

AT = datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)
USER = UserCredentials("token")
APP = AppCredentials("app-id", "secret")
FILM = {"type": "movie", "title": "Heat", "year": 1995, "external_ids": {"imdb": "tt0113277"}}
EPISODE = {
    "type": "episode",
    "title": "Pilot",
    "season": 1,
    "number": 3,
    "show": {"title": "Severance", "year": 2022, "external_ids": {"tvdb": 371980}},
}
ANIME = {
    "type": "anime_episode",
    "title": "Ep",
    "number": 4,
    "show": {"title": "Frieren", "external_ids": {"mal": 52991}},
}
TRACK = {"type": "track", "title": "Xtal", "artists": ["Aphex Twin"]}


def work(kind: WorkKind, item: dict[str, Any], service: str = "trakt") -> ScrobbleWork:
    return scrobble_work(service, kind, item, AT)


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, {}, json.dumps(body).encode())


def test_which_work_is_asked_about() -> None:
    trakt = TraktRecheck(TraktClient("https://api.trakt.tv", APP))
    assert trakt.applies(work(WorkKind.WATCHED, FILM))
    # A repeated scrobble stop is answered 409 within the hour; a rating is set, not added.
    assert not trakt.applies(work(WorkKind.SCROBBLE, FILM))
    assert not trakt.applies(work(WorkKind.RATING, FILM))
    assert SimklRecheck("https://api.simkl.com", APP).applies(work(WorkKind.WATCHED, FILM))
    assert LastfmRecheck("https://ws", APP).applies(work(WorkKind.SCROBBLE, TRACK))
    assert not LastfmRecheck("https://ws", APP).applies(work(WorkKind.NOW_PLAYING, TRACK))


def test_trakt_asks_its_history_around_the_moment() -> None:
    trakt = TraktRecheck(TraktClient("https://api.trakt.tv/", APP))
    request = trakt.build(work(WorkKind.WATCHED, FILM), USER)
    assert request is not None
    assert (request.method, request.url) == ("GET", "https://api.trakt.tv/sync/history/movies")
    assert request.params == {
        "start_at": "2026-11-20T21:04:04.000Z",
        "end_at": "2026-11-20T21:04:06.000Z",
        "limit": "100",
    }
    assert request.headers["Authorization"] == "Bearer token"
    episode = trakt.build(work(WorkKind.WATCHED, EPISODE), USER)
    assert episode is not None
    assert episode.url.endswith("/sync/history/episodes")


def test_trakt_holds_the_same_item_at_the_same_moment_only() -> None:
    trakt = TraktRecheck(TraktClient("https://api.trakt.tv", APP))
    film, episode = work(WorkKind.WATCHED, FILM), work(WorkKind.WATCHED, EPISODE)
    there = {"watched_at": "2026-11-20T21:04:05.000Z", "type": "movie",
             "movie": {"title": "Heat", "ids": {"imdb": "tt0113277", "trakt": 1}}}  # fmt: skip
    assert trakt.holds(film, answer([there]))
    assert not trakt.holds(film, answer([{**there, "watched_at": "2026-11-20T21:04:09.000Z"}]))
    other = {**there, "movie": {"ids": {"imdb": "tt9999999"}}}
    assert not trakt.holds(film, answer([other]))
    assert not trakt.holds(film, answer([]))
    shown = {"watched_at": "2026-11-20T21:04:05Z", "type": "episode",
             "episode": {"season": 1, "number": 3}, "show": {"ids": {"tvdb": 371980}}}  # fmt: skip
    assert trakt.holds(episode, answer([shown]))
    assert not trakt.holds(episode, answer([{**shown, "episode": {"season": 1, "number": 4}}]))
    with pytest.raises(NoAnswer):
        trakt.holds(film, answer({"error": "x"}, 503))


def test_simkl_reads_the_library_since_just_before() -> None:
    simkl = SimklRecheck("https://api.simkl.com", APP)
    request = simkl.build(work(WorkKind.WATCHED, ANIME, "simkl"), USER)
    assert request is not None
    assert request.url == "https://api.simkl.com/sync/all-items/anime"
    assert request.params is not None
    assert request.params["date_from"] == "2026-11-20T21:04:04Z"
    assert request.headers["simkl-api-key"] == "app-id"


def test_simkl_holds_a_watch_of_the_item_at_the_moment() -> None:
    simkl = SimklRecheck("https://api.simkl.com", APP)
    film = work(WorkKind.WATCHED, FILM, "simkl")
    library = {"movies": [{"last_watched_at": "2026-11-20T21:04:05Z",
                           "movie": {"title": "Heat", "ids": {"imdb": "tt0113277"}}}]}  # fmt: skip
    assert simkl.holds(film, answer(library))
    assert not simkl.holds(film, answer(None))  # an empty library answers null
    anime = work(WorkKind.WATCHED, ANIME, "simkl")
    episodes = [{"number": 4, "watched_at": "2026-11-20T21:04:05Z"}]
    show = {"title": "Frieren", "ids": {"mal": 52991}}
    watched = {"anime": [{"show": show, "seasons": [{"number": 1, "episodes": episodes}]}]}
    assert simkl.holds(anime, answer(watched))
    earlier = json.loads(json.dumps(watched).replace("21:04:05", "20:00:00"))
    assert not simkl.holds(anime, answer(earlier))
    with pytest.raises(NoAnswer):
        simkl.holds(film, answer({"error": "x"}, 500))


def test_lastfm_asks_the_second_of_the_scrobble_by_user_name() -> None:
    lastfm = LastfmRecheck("https://ws.audioscrobbler.com/2.0/", APP)
    listen = work(WorkKind.SCROBBLE, TRACK, "lastfm")
    assert lastfm.build(listen, USER) is None  # no user name: nothing to ask
    request = lastfm.build(listen, UserCredentials("token", "rj"))
    assert request is not None
    assert request.params is not None
    second = str(int(AT.timestamp()))
    assert request.params["user"] == "rj"
    assert (request.params["from"], request.params["to"]) == (second, second)
    assert "sk" not in request.params  # a read needs no session


def test_lastfm_holds_the_same_track_at_that_second() -> None:
    lastfm = LastfmRecheck("https://ws", APP)
    listen = work(WorkKind.SCROBBLE, TRACK, "lastfm")
    second = str(int(AT.timestamp()))
    track = {"artist": {"#text": "aphex twin"}, "name": "XTAL", "date": {"uts": second}}
    # Several tracks come as a list, a single one as an object.
    assert lastfm.holds(listen, answer({"recenttracks": {"track": [track]}}))
    assert lastfm.holds(listen, answer({"recenttracks": {"track": track}}))
    assert not lastfm.holds(listen, answer({"recenttracks": {"track": []}}))
    other = {**track, "name": "Tha"}
    assert not lastfm.holds(listen, answer({"recenttracks": {"track": [other]}}))
    with pytest.raises(NoAnswer):
        lastfm.holds(listen, answer({"error": 8, "message": "Operation failed"}, 500))
