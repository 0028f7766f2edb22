"""Secrets stay secret in the dispatcher (issue 15): the request values every client builds
show no bearer token, refresh token, session key, signature or client secret in ``repr`` or
``str``; neither do the values that carry tokens around (connection state, import jobs,
responses); a provider's answer text becomes a short, plain reason with no tags, no control
characters and none of the request's secrets in it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from scrobble_dispatcher.repository import ConnectionState
from scrobble_shared.trackers.anilist.client import AniListClient
from scrobble_shared.trackers.anilist.history import AniListReader
from scrobble_shared.trackers.anilist.ids import AniListResolver
from scrobble_shared.trackers.history import JobContext
from scrobble_shared.trackers.http import (
    REASON_LIMIT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    UserCredentials,
    readable_reason,
)
from scrobble_shared.trackers.ids import Lookup
from scrobble_shared.trackers.lastfm.client import LastfmClient
from scrobble_shared.trackers.lastfm.history import LastfmReader
from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient
from scrobble_shared.trackers.listenbrainz.history import ListenBrainzReader
from scrobble_shared.trackers.refresh import (
    NewTokens,
    NotNow,
    RefreshConfig,
    Refused,
    TokenState,
    build_refresh,
    parse_refresh,
)
from scrobble_shared.trackers.simkl.client import SimklClient
from scrobble_shared.trackers.simkl.history import SimklReader
from scrobble_shared.trackers.simkl.ids import SimklResolver
from scrobble_shared.trackers.trakt.client import TraktClient
from scrobble_shared.trackers.trakt.history import TraktReader
from scrobble_shared.trackers.trakt.ids import TraktResolver
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

TOKEN = "user-access-token-5e1f0c9a7d"
REFRESH = "user-refresh-token-8b2d4f6a1c"
CLIENT_ID = "public-client-id"
SECRET = "app-client-secret-3c7e9a1b5d"
USER = UserCredentials(TOKEN)
APP = AppCredentials(CLIENT_ID, SECRET)
AT = datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)

MOVIE = {"type": "movie", "title": "Heat", "year": 1995, "external_ids": {"imdb": "tt0113277"}}
EPISODE = {
    "type": "episode",
    "title": "Pilot",
    "season": 1,
    "number": 1,
    "show": {"title": "Severance", "year": 2022, "external_ids": {"tvdb": 371980}},
}
ANIME = {
    "type": "anime_episode",
    "title": "The Journey's End",
    "number": 1,
    "duration_ms": 1_440_000,
    "show": {"title": "Frieren", "external_ids": {"anilist": 154587, "mal": 52991}},
}
TRACK = {
    "type": "track",
    "title": "Windowlicker",
    "duration_ms": 367_000,
    "artists": ["Aphex Twin"],
    "album": "Windowlicker",
}


CONNECTION = uuid4()


def work(service: str, kind: WorkKind, item: dict[str, Any], **extra: Any) -> ScrobbleWork:
    return scrobble_work(service, kind, item, AT, connection_id=CONNECTION, dedupe_key="k", **extra)


def delivery_requests() -> list[tuple[str, HttpRequest]]:
    """Every kind of request the delivery path builds, one or more per client."""
    trakt = TraktClient("https://api.trakt.tv", APP)
    simkl = SimklClient("https://api.simkl.com", APP)
    anilist = AniListClient("https://graphql.anilist.co")
    lastfm = LastfmClient("https://ws.audioscrobbler.com/2.0/", APP)
    listenbrainz = ListenBrainzClient("https://api.listenbrainz.org/1")
    found: list[tuple[str, HttpRequest]] = []
    for kind, extra in (
        (WorkKind.START, {"progress_percent": 1.0}),
        (WorkKind.SCROBBLE, {"progress_percent": 95.0}),
        (WorkKind.WATCHED, {}),
        (WorkKind.RATING, {"rating": 8.0}),
    ):
        found.append((f"trakt {kind}", trakt.build(work("trakt", kind, MOVIE, **extra), USER)))
    for kind, extra in ((WorkKind.SCROBBLE, {"progress_percent": 95.0}), (WorkKind.WATCHED, {})):
        found.append((f"simkl {kind}", simkl.build(work("simkl", kind, EPISODE, **extra), USER)))
    anime = work("anilist", WorkKind.WATCHED, ANIME)
    found.append(("anilist watched", anilist.build(anime, USER)))
    found.append(("anilist lookup", anilist.build_media_lookup(52991, USER)))
    found.append(("anilist current entry", anilist.build_current_entry(154587, USER)))
    found.append(("anilist progress", anilist.build_save_progress(anime, 154587, USER, None)))
    rated = work("anilist", WorkKind.RATING, ANIME, rating=8.0)
    found.append(("anilist score", anilist.build_save_score(rated, 154587, USER)))
    songs = [work("lastfm", WorkKind.SCROBBLE, TRACK) for _ in range(3)]
    found.append(("lastfm scrobble", lastfm.build(songs[0], USER)))
    found.append(("lastfm batch", lastfm.build_batch(songs, USER)))
    found.append(
        ("lastfm now playing", lastfm.build(work("lastfm", WorkKind.NOW_PLAYING, TRACK), USER))
    )
    loved = work("lastfm", WorkKind.RATING, TRACK, rating=10.0)
    found.append(("lastfm love", lastfm.build(loved, USER)))
    listens = [work("listenbrainz", WorkKind.SCROBBLE, TRACK) for _ in range(3)]
    found.append(("listenbrainz single", listenbrainz.build(listens[0], USER)))
    found.append(("listenbrainz import", listenbrainz.build_batch(listens, USER)))
    config = RefreshConfig.trakt("https://api.trakt.tv", APP)
    found.append(("trakt refresh", build_refresh(config, REFRESH)))
    return found


def lookup_requests() -> list[tuple[str, HttpRequest]]:
    search = Lookup("k1", "search", "movie", "item", title="Heat", year=1995)
    by_id = Lookup("k2", "id", "movie", "item", id_type="imdb", id_value="tt0113277")
    anime = Lookup("k3", "id", "anime", "item", id_type="mal", id_value="52991")
    return [
        ("trakt search", TraktResolver("https://api.trakt.tv", APP).build(search, USER)),
        ("trakt id", TraktResolver("https://api.trakt.tv", APP).build(by_id, USER)),
        ("simkl id", SimklResolver("https://api.simkl.com", APP).build(by_id, USER)),
        ("anilist mal", AniListResolver("https://graphql.anilist.co").build(anime, USER)),
    ]


def import_requests() -> list[tuple[str, HttpRequest]]:
    ctx = JobContext(uuid4(), TOKEN, "someone", None, AT)
    readers: list[tuple[str, Any]] = [
        ("trakt", TraktReader("https://api.trakt.tv", APP)),
        ("simkl", SimklReader("https://api.simkl.com", APP)),
        ("anilist", AniListReader("https://graphql.anilist.co")),
        ("lastfm", LastfmReader("https://ws.audioscrobbler.com/2.0/", APP)),
        ("listenbrainz", ListenBrainzReader("https://api.listenbrainz.org/1")),
    ]
    return [(f"import {name}", r.request(r.start(ctx), ctx)) for name, r in readers]


ALL_REQUESTS = delivery_requests() + lookup_requests() + import_requests()


def secrets_of(request: HttpRequest) -> list[str]:
    """What in this request is secret, found the hard way (not through the code under test)."""
    found = [TOKEN, REFRESH, SECRET]
    form = dict(request.form or {})
    found += [form[k] for k in ("sk", "api_sig") if k in form]
    return found


@pytest.mark.parametrize(("name", "request_"), ALL_REQUESTS, ids=[n for n, _ in ALL_REQUESTS])
def test_no_request_shows_a_secret_in_repr_or_str(name: str, request_: HttpRequest) -> None:
    shown = repr(request_) + str(request_) + f"{request_}" + repr([request_])
    for secret in secrets_of(request_):
        assert secret not in shown, f"{name}: {shown}"
    # Still useful to a person reading a log or a failing test.
    assert request_.method in shown
    assert request_.url.split("?")[0] in shown


def test_every_client_puts_the_user_credential_in_its_requests() -> None:
    """The test above would prove nothing if the requests carried no secret at all."""
    for name, request_ in ALL_REQUESTS:
        if name == "anilist lookup" or name.startswith("import lastfm"):
            continue  # public reads: no user credential needed
        if name.startswith("trakt refresh"):
            assert request_.json["refresh_token"] == REFRESH
            continue
        carried = json.dumps(
            [dict(request_.headers), request_.json, dict(request_.form or {})], default=str
        )
        assert TOKEN in carried, name


@pytest.mark.parametrize(("name", "request_"), ALL_REQUESTS, ids=[n for n, _ in ALL_REQUESTS])
def test_a_request_names_its_own_secrets(name: str, request_: HttpRequest) -> None:
    named = set(request_.secrets())
    carried = json.dumps(
        [dict(request_.headers), request_.json, dict(request_.form or {})], default=str
    )
    for secret in secrets_of(request_):
        if secret in carried:
            assert any(secret in value for value in named), f"{name}: {secret!r} not named"
    assert CLIENT_ID not in named  # public: client ids and API keys are not secrets


def test_values_that_carry_tokens_do_not_show_them() -> None:
    state = ConnectionState(
        enabled=True,
        status="active",
        token=TOKEN,
        tokens=TokenState(version=1, expires_at=None, has_refresh_token=True),
    )
    ctx = JobContext(uuid4(), TOKEN, "someone", None, AT)
    echo = HttpResponse(401, {"set-cookie": f"session={TOKEN}"}, f'{{"error": "{TOKEN}"}}'.encode())
    for value in (state, ctx, echo, USER, APP):
        assert TOKEN not in repr(value), repr(value)
        assert TOKEN not in str(value), str(value)
        assert SECRET not in repr(value)


# --- a provider's text in reasons ---------------------------------------------------------

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title>"
    b"<style>body{color:red}</style><script>alert('x')</script></head>"
    b"<body><h1>502 Bad Gateway</h1>\r\n<p>cloudflare</p></body></html>"
)


def answer(status: int, body: bytes | dict[str, Any], **headers: str) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, {k.lower(): v for k, v in headers.items()}, raw)


def test_reasons_are_plain_short_text() -> None:
    html = readable_reason("Simkl is unavailable: " + HTML_PAGE.decode())
    assert "<" not in html
    assert ">" not in html
    assert "alert" not in html
    assert "color" not in html
    assert "502 Bad Gateway" in html
    long = readable_reason("Last.fm error 8: " + "x" * 5000)
    assert len(long) <= REASON_LIMIT
    assert long.startswith("Last.fm error 8: xxx")
    assert long.endswith("…")
    controls = readable_reason("a\x00b\r\nc\td\x1b[31m\u2028e")
    assert controls == "ab c d[31m e"
    plain = 'not found at Trakt: movie "Heat" (1995): no id Trakt accepts'
    assert readable_reason(plain) == plain  # our own words stay as they are
    assert readable_reason("Trakt answered <3 times") == "Trakt answered <3 times"


HOSTILE: list[tuple[str, Any, HttpResponse]] = [
    (
        "simkl 502 html",
        SimklClient("https://api.simkl.com", APP),
        answer(502, HTML_PAGE, content_type="text/html"),
    ),
    (
        "simkl 400 echo",
        SimklClient("https://api.simkl.com", APP),
        answer(400, {"message": f"bad header Authorization: Bearer {TOKEN}"}),
    ),
    (
        "trakt 422 echo",
        TraktClient("https://api.trakt.tv", APP),
        answer(422, {"error_description": f"token {TOKEN} cannot do that"}),
    ),
    (
        "lastfm long message",
        LastfmClient("https://ws.audioscrobbler.com/2.0/", APP),
        answer(200, {"error": 6, "message": "Invalid parameters " + "y" * 4000}),
    ),
    (
        "lastfm echo",
        LastfmClient("https://ws.audioscrobbler.com/2.0/", APP),
        answer(200, {"error": 6, "message": f"unknown session {TOKEN}"}),
    ),
    (
        "listenbrainz 401 echo",
        ListenBrainzClient("https://api.listenbrainz.org/1"),
        answer(401, {"error": f"Invalid authorization token {TOKEN}."}),
    ),
    (
        "anilist 400 html",
        AniListClient("https://graphql.anilist.co"),
        answer(400, {"errors": [{"message": "<b>Bad</b> " + "z" * 900, "status": 400}]}),
    ),
]


@pytest.mark.parametrize(("name", "client", "response"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_answer_becomes_a_short_plain_reason_without_secrets(
    name: str, client: Any, response: HttpResponse
) -> None:
    service = client.service
    item = {"lastfm": TRACK, "listenbrainz": TRACK, "anilist": ANIME}.get(service, MOVIE)
    kind = WorkKind.SCROBBLE if service != "anilist" else WorkKind.WATCHED
    piece = work(service, kind, item, progress_percent=95.0)
    request = client.build(piece, USER)
    outcome: Outcome = client.classify(piece, response).scrubbed(request.secrets())
    assert outcome.kind is not OutcomeKind.DONE
    assert len(outcome.reason) <= REASON_LIMIT, outcome.reason
    assert "<" not in outcome.reason, outcome.reason
    assert "\r" not in outcome.reason, outcome.reason
    assert TOKEN not in outcome.reason, outcome.reason


def test_refresh_answers_are_capped_and_hold_no_secret() -> None:
    config = RefreshConfig.trakt("https://api.trakt.tv", APP)
    request = build_refresh(config, REFRESH)
    now = datetime.now(UTC)
    for response in (
        answer(400, {"error": f"invalid_grant for {REFRESH} " + "q" * 3000}),
        answer(401, {"error": f"<html>client {SECRET} unknown</html>"}),
    ):
        result = parse_refresh(response, now, config)
        assert isinstance(result, Refused | NotNow)
        reason = result.scrubbed(request.secrets()).reason
        assert len(reason) <= REASON_LIMIT, reason
        for unwanted in (REFRESH, SECRET, "<"):
            assert unwanted not in reason, reason
    issued = parse_refresh(answer(200, {"access_token": "a", "refresh_token": "b"}), now)
    assert isinstance(issued, NewTokens)
    assert issued.expires_at > now + timedelta(days=6)
