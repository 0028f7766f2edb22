"""The Simkl client: build and classify with plain values, then every kind end to end against
the sandbox's Simkl fake (which checks what Simkl checks), in process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx
import pytest

from scrobble_dispatcher.transport import send
from scrobble_sandbox import Sandbox
from scrobble_shared.events import Content
from scrobble_shared.trackers.http import (
    USER_AGENT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    OutcomeKind,
    ServiceClient,
    Unsendable,
    UserCredentials,
)
from scrobble_shared.trackers.simkl.client import SimklClient, clamp_progress, clamp_rating, iso_utc
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

API = "https://api.simkl.test"
CLIENT = SimklClient(API, AppCredentials("app-id", "app-secret"))
USER = UserCredentials("user-token")
AT = datetime(2026, 11, 20, 21, 4, 5, tzinfo=UTC)
AT_TEXT = "2026-11-20T21:04:05Z"

# --- items -------------------------------------------------------------------------------


def content(kind: str, title: str, **fields: Any) -> Content:
    return Content.model_validate(
        {"type": kind, "id": "2a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d22", "title": title} | fields
    )


HEAT_IDS = {"imdb": "tt0113277", "tmdb": 949, "simkl": 53992, "trakt": 1}
HEAT = content("movie", "Heat", year=1995, external_ids=HEAT_IDS)
HEAT_BY_TITLE = content("movie", "Heat", year=1995)
HEAT_BY_TMDB = content("movie", "Heat", external_ids={"tmdb": 949})
WIRE_SHOW = {
    "title": "The Wire",
    "year": 2002,
    "external_ids": {"tvdb": 79126, "imdb": "tt0306414"},
}
WIRE = content("episode", "The Target", show=WIRE_SHOW, season=1, number=1)
WIRE_BY_TITLE = content(
    "episode", "The Detail", show={"title": "The Wire", "year": 2002}, season=1, number=2
)
BEBOP_SHOW = {"title": "Cowboy Bebop", "year": 1998, "external_ids": {"mal": 1, "tvdb": 76885}}
BEBOP = content("anime_episode", "Asteroid Blues", show=BEBOP_SHOW, season=1, number=1)
# Per-season ids on the item itself, no show object.
BEBOP_BARE = content("anime_episode", "Stray Dog Strut", number=2, external_ids={"anilist": 1})
# Franchise ids only: the season goes along.
AOT_SHOW = {"title": "Attack on Titan", "year": 2013, "external_ids": {"tvdb": 267440}}
AOT = content("anime_episode", "The Town Where Everything Began", show=AOT_SHOW, season=3, number=1)
TRACK = content("track", "Windowlicker", artists=["Aphex Twin"])

HEAT_ITEM = {
    "title": "Heat",
    "year": 1995,
    "ids": {"simkl": 53992, "imdb": "tt0113277", "tmdb": 949},
}
WIRE_ITEM = {"title": "The Wire", "year": 2002, "ids": {"imdb": "tt0306414", "tvdb": 79126}}
BEBOP_ITEM = {"title": "Cowboy Bebop", "year": 1998, "ids": {"mal": 1}}
AOT_ITEM = {"title": "Attack on Titan", "year": 2013, "ids": {"tvdb": 267440}}


def work(
    kind: WorkKind,
    item: Content,
    *,
    progress: float | None = None,
    rating: float | None = None,
    occurred_at: datetime = AT,
) -> ScrobbleWork:
    ids = {"scrobble_id": UUID(int=1), "connection_id": UUID(int=2), "user_id": UUID(int=3)}
    return scrobble_work(
        "simkl",
        kind,
        item,
        occurred_at,
        dedupe_key=f"test:{kind.value}",
        progress_percent=progress,
        rating=rating,
        **ids,
    )


# --- build -------------------------------------------------------------------------------

S = WorkKind
BUILD_CASES: list[tuple[str, ScrobbleWork, str, dict[str, Any]]] = [
    (
        "start movie, all ids",
        work(S.START, HEAT, progress=0),
        "/scrobble/start",
        {"progress": 0.0, "movie": HEAT_ITEM},
    ),
    (
        "start movie, title and year",
        work(S.START, HEAT_BY_TITLE, progress=1.234),
        "/scrobble/start",
        {"progress": 1.23, "movie": {"title": "Heat", "year": 1995}},
    ),
    (
        "start movie, no progress",
        work(S.START, HEAT_BY_TMDB),
        "/scrobble/start",
        {"progress": 0.0, "movie": {"title": "Heat", "ids": {"tmdb": 949}}},
    ),
    (
        "pause episode, show ids",
        work(S.PAUSE, WIRE, progress=42.5),
        "/scrobble/pause",
        {"progress": 42.5, "show": WIRE_ITEM, "episode": {"season": 1, "number": 1}},
    ),
    (
        "pause episode, show title and year",
        work(S.PAUSE, WIRE_BY_TITLE, progress=10),
        "/scrobble/pause",
        {
            "progress": 10.0,
            "show": {"title": "The Wire", "year": 2002},
            "episode": {"season": 1, "number": 2},
        },
    ),
    (
        "pause anime, per-season id",
        work(S.PAUSE, BEBOP, progress=5),
        "/scrobble/pause",
        {"progress": 5.0, "anime": BEBOP_ITEM, "episode": {"number": 1}},
    ),
    (
        "scrobble movie, progress clamped",
        work(S.SCROBBLE, HEAT, progress=100.7),
        "/scrobble/stop",
        {"progress": 100.0, "movie": HEAT_ITEM},
    ),
    (
        "scrobble movie, no progress means all of it",
        work(S.SCROBBLE, HEAT),
        "/scrobble/stop",
        {"progress": 100.0, "movie": HEAT_ITEM},
    ),
    (
        "scrobble episode",
        work(S.SCROBBLE, WIRE, progress=91.666),
        "/scrobble/stop",
        {"progress": 91.67, "show": WIRE_ITEM, "episode": {"season": 1, "number": 1}},
    ),
    (
        "scrobble anime, ids on the item",
        work(S.SCROBBLE, BEBOP_BARE, progress=88),
        "/scrobble/stop",
        {"progress": 88.0, "anime": {"ids": {"anilist": 1}}, "episode": {"number": 2}},
    ),
    (
        "scrobble anime, franchise ids keep the season",
        work(S.SCROBBLE, AOT, progress=95),
        "/scrobble/stop",
        {"progress": 95.0, "anime": AOT_ITEM, "episode": {"season": 3, "number": 1}},
    ),
    (
        "watched movie",
        work(S.WATCHED, HEAT),
        "/sync/history",
        {"movies": [HEAT_ITEM | {"watched_at": AT_TEXT}]},
    ),
    (
        "watched episode",
        work(S.WATCHED, WIRE, occurred_at=AT.astimezone(timezone(timedelta(hours=2)))),
        "/sync/history",
        {
            "shows": [
                WIRE_ITEM
                | {"seasons": [{"number": 1, "episodes": [{"number": 1, "watched_at": AT_TEXT}]}]}
            ]
        },
    ),
    (
        "watched anime, per-season id",
        work(S.WATCHED, BEBOP),
        "/sync/history",
        {"anime": [BEBOP_ITEM | {"episodes": [{"number": 1, "watched_at": AT_TEXT}]}]},
    ),
    (
        "watched anime, franchise ids",
        work(S.WATCHED, AOT),
        "/sync/history",
        {
            "anime": [
                AOT_ITEM
                | {"seasons": [{"number": 3, "episodes": [{"number": 1, "watched_at": AT_TEXT}]}]}
            ]
        },
    ),
    (
        "rating movie",
        work(S.RATING, HEAT, rating=7.6),
        "/sync/ratings",
        {"movies": [HEAT_ITEM | {"rating": 8, "rated_at": AT_TEXT}]},
    ),
    (
        "rating movie by title",
        work(S.RATING, HEAT_BY_TITLE, rating=10),
        "/sync/ratings",
        {"movies": [{"title": "Heat", "year": 1995, "rating": 10, "rated_at": AT_TEXT}]},
    ),
]


@pytest.mark.parametrize(
    ("case", "item", "path", "body"), BUILD_CASES, ids=[c[0] for c in BUILD_CASES]
)
def test_build(case: str, item: ScrobbleWork, path: str, body: dict[str, Any]) -> None:
    request = CLIENT.build(item, USER)
    assert request.method == "POST"
    assert request.url == API + path
    assert request.json == body
    assert request.form is None
    json.dumps(request.json)  # serialisable as it is


def test_build_headers_and_params() -> None:
    request = SimklClient(API + "/", AppCredentials("app-id")).build(work(S.START, HEAT), USER)
    assert request.url == f"{API}/scrobble/start"
    assert request.headers == {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "simkl-api-key": "app-id",
        "Authorization": "Bearer user-token",
    }
    assert request.params == {"app-name": "revenge-scrobble", "app-version": "0.1"}


UNSENDABLE_CASES: list[tuple[str, ScrobbleWork, str]] = [
    ("now playing", work(S.NOW_PLAYING, HEAT), "no call for now_playing"),
    ("track", work(S.SCROBBLE, TRACK, progress=90), "not a track"),
    ("track history", work(S.WATCHED, TRACK), "not a track"),
    ("track rating", work(S.RATING, TRACK, rating=9), "not a track"),
    (
        "movie without ids or year",
        work(S.START, content("movie", "Heat")),
        "the movie 'Heat' has no id Simkl knows and no title and year",
    ),
    (
        "movie with only ids Simkl does not take",
        work(S.WATCHED, content("movie", "Heat", external_ids={"trakt": 1})),
        "no id Simkl knows",
    ),
    (
        "episode without a show",
        work(S.START, content("episode", "Pilot", season=1, number=1)),
        "names no show",
    ),
    (
        "episode without season",
        work(S.WATCHED, content("episode", "Pilot", show=WIRE_SHOW, number=1)),
        "no season/number",
    ),
    (
        "episode without number",
        work(S.PAUSE, content("episode", "Pilot", show=WIRE_SHOW, season=1)),
        "no season/number",
    ),
    (
        "show without ids or year",
        work(S.START, content("episode", "Pilot", show={"title": "X"}, season=1, number=1)),
        "the show 'X' has no id",
    ),
    (
        "anime without number",
        work(S.START, content("anime_episode", "Ep", show=BEBOP_SHOW)),
        "no episode number",
    ),
    (
        "anime without ids or year",
        work(S.START, content("anime_episode", "Ep", show={"title": "Bebop"}, number=1)),
        "the anime 'Bebop' has no id",
    ),
    (
        "anime without show or ids",
        work(S.START, content("anime_episode", "Ep", number=1)),
        "the anime episode 'Ep' has no id",
    ),
    ("episode rating", work(S.RATING, WIRE, rating=8), "not single episodes"),
    ("anime rating", work(S.RATING, BEBOP, rating=8), "not single episodes"),
    ("rating without a rating", work(S.RATING, HEAT), "no rating"),
]


@pytest.mark.parametrize(
    ("case", "item", "reason"), UNSENDABLE_CASES, ids=[c[0] for c in UNSENDABLE_CASES]
)
def test_unsendable(case: str, item: ScrobbleWork, reason: str) -> None:
    with pytest.raises(Unsendable, match=reason):
        CLIENT.build(item, USER)


@pytest.mark.parametrize(
    ("given", "default", "expected"),
    [
        (None, 0.0, 0.0),
        (None, 100.0, 100.0),
        (-3, 0.0, 0.0),
        (101, 0.0, 100.0),
        (33.3333, 0, 33.33),
    ],
)
def test_clamp_progress(given: float | None, default: float, expected: float) -> None:
    assert clamp_progress(given, default) == expected


@pytest.mark.parametrize(("given", "expected"), [(0.2, 1), (1, 1), (5.5, 6), (9.6, 10), (12, 10)])
def test_clamp_rating(given: float, expected: int) -> None:
    assert clamp_rating(given) == expected


def test_iso_utc_takes_naive_times_as_utc() -> None:
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5, 678)) == "2026-01-02T03:04:05Z"


def test_is_a_service_client() -> None:
    client: ServiceClient = CLIENT
    assert client.service == "simkl"


# --- classify ----------------------------------------------------------------------------


def response(status: int, body: Any = None, **headers: str) -> HttpResponse:
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    return HttpResponse(status, {k.lower().replace("_", "-"): v for k, v in headers.items()}, raw)


def simkl_error(status: int, error: str, message: str) -> dict[str, Any]:
    return {"error": error, "code": status, "message": message}


EMPTY_NOT_FOUND: dict[str, list[Any]] = {"movies": [], "shows": [], "episodes": []}
Out = OutcomeKind
CLASSIFY_CASES: list[tuple[str, WorkKind, HttpResponse, OutcomeKind, str, float | None]] = [
    ("start 201", S.START, response(201, {"id": 0, "action": "start"}), Out.DONE, "accepted", None),
    ("pause 201", S.PAUSE, response(201, {"id": 0, "action": "pause"}), Out.DONE, "accepted", None),
    ("stop 201", S.SCROBBLE, response(201, {"id": 9, "action": "scrobble"}), Out.DONE, "", None),
    (
        "stop kept as pause",
        S.SCROBBLE,
        response(201, {"id": 0, "action": "pause", "progress": 70}),
        Out.PERMANENT,
        "kept the stop at 70 % as a pause",
        None,
    ),
    ("stop 200 no body", S.SCROBBLE, response(200), Out.DONE, "accepted", None),
    (
        "history added",
        S.WATCHED,
        response(201, {"added": {"movies": 1}, "not_found": EMPTY_NOT_FOUND}),
        Out.DONE,
        "accepted",
        None,
    ),
    ("history 201 no body", S.WATCHED, response(201), Out.DONE, "accepted", None),
    (
        "ratings without not_found",
        S.RATING,
        response(201, {"added": {"movies": 1}}),
        Out.DONE,
        "accepted",
        None,
    ),
    (
        "history not found",
        S.WATCHED,
        response(201, {"added": {}, "not_found": EMPTY_NOT_FOUND | {"movies": [{"ids": {}}]}}),
        Out.PERMANENT,
        "not found at Simkl",
        None,
    ),
    (
        "ratings not found",
        S.RATING,
        response(201, {"added": {}, "not_found": {"movies": [], "shows": [{"title": "X"}]}}),
        Out.PERMANENT,
        "not found at Simkl",
        None,
    ),
    (
        "409 repeat stop",
        S.SCROBBLE,
        response(409, {"watched_at": AT_TEXT, "expires_at": "2026-11-20T22:04:05Z"}),
        Out.ALREADY_DONE,
        f"already has this play (watched at {AT_TEXT})",
        None,
    ),
    ("409 no body", S.WATCHED, response(409), Out.ALREADY_DONE, "already has this play", None),
    (
        "401 bad token",
        S.START,
        response(401, simkl_error(401, "user_token_failed", "The user token is missing")),
        Out.RECONNECT,
        "The user token is missing",
        None,
    ),
    (
        "429 with Retry-After",
        S.SCROBBLE,
        response(429, simkl_error(429, "rate_limit", "Too many"), retry_after="7"),
        Out.RETRY,
        "Too many (HTTP 429)",
        7.0,
    ),
    ("429 bare", S.RATING, response(429), Out.RETRY, "no details (HTTP 429)", None),
    ("500", S.START, response(500, b"oops"), Out.RETRY, "oops (HTTP 500)", None),
    ("502 html", S.WATCHED, response(502, b"<html>Bad gateway</html>"), Out.RETRY, "502", None),
    ("503 retry after", S.PAUSE, response(503, retry_after="30"), Out.RETRY, "HTTP 503", 30.0),
    ("504", S.PAUSE, response(504), Out.RETRY, "HTTP 504", None),
    (
        "404 id_err",
        S.SCROBBLE,
        response(404, simkl_error(404, "id_err", "The item was not found")),
        Out.PERMANENT,
        "not found at Simkl",
        None,
    ),
    ("404 bare", S.SCROBBLE, response(404), Out.PERMANENT, "not found at Simkl", None),
    (
        "404 other",
        S.START,
        response(404, simkl_error(404, "url_err", "No such route")),
        Out.PERMANENT,
        "Simkl refused it: No such route (HTTP 404)",
        None,
    ),
    (
        "400",
        S.RATING,
        response(400, simkl_error(400, "bad_request", "rating must be an integer 1-10")),
        Out.PERMANENT,
        "Simkl refused it: rating must be an integer 1-10 (HTTP 400)",
        None,
    ),
    (
        "403 error code only",
        S.START,
        response(403, {"error": "forbidden"}),
        Out.PERMANENT,
        "forbidden (HTTP 403)",
        None,
    ),
    (
        "400 without message or error",
        S.START,
        response(400, {"code": 400}),
        Out.PERMANENT,
        '{"code": 400} (HTTP 400)',
        None,
    ),
    ("412", S.WATCHED, response(412, b""), Out.PERMANENT, "no details (HTTP 412)", None),
]


@pytest.mark.parametrize(
    ("case", "kind", "answer", "outcome", "reason", "after"),
    CLASSIFY_CASES,
    ids=[c[0] for c in CLASSIFY_CASES],
)
def test_classify(
    case: str,
    kind: WorkKind,
    answer: HttpResponse,
    outcome: OutcomeKind,
    reason: str,
    after: float | None,
) -> None:
    result = CLIENT.classify(work(kind, HEAT, progress=90, rating=8), answer)
    assert result.kind is outcome
    assert reason in result.reason
    assert result.http_status == answer.status
    assert result.retry_after_s == after


RETRY_AFTER_CASES: list[tuple[str, dict[str, str], float | None]] = [
    ("none", {}, None),
    ("seconds", {"retry-after": "3"}, 3.0),
    ("fraction", {"retry-after": " 1.5 "}, 1.5),
    # Not delay-seconds (RFC 9110 allows digits only): ignored, not "retry at once".
    ("negative", {"retry-after": "-4"}, None),
    ("blank", {"retry-after": " "}, None),
    ("nan", {"retry-after": "nan"}, None),
    (
        "date against Date",
        {"retry-after": "Fri, 20 Nov 2026 21:04:35 GMT", "date": "Fri, 20 Nov 2026 21:04:05 GMT"},
        30.0,
    ),
    ("date without Date", {"retry-after": "Fri, 20 Nov 2026 21:04:35 GMT"}, None),
    ("garbage", {"retry-after": "soon", "date": "Fri, 20 Nov 2026 21:04:05 GMT"}, None),
]


@pytest.mark.parametrize(
    ("case", "headers", "expected"), RETRY_AFTER_CASES, ids=[c[0] for c in RETRY_AFTER_CASES]
)
def test_wait_before_next(case: str, headers: dict[str, str], expected: float | None) -> None:
    assert CLIENT.wait_before_next_s(HttpResponse(429, headers, b"")) == expected
    assert CLIENT.wait_before_next_s(HttpResponse(201, headers, b"{}")) == expected


# --- against the sandbox's Simkl fake ----------------------------------------------------


def live_client(sb: Sandbox) -> SimklClient:
    return SimklClient(sb.env["SIMKL_API_URL"], AppCredentials(sb.env["SIMKL_CLIENT_ID"]))


def live_user(sb: Sandbox) -> UserCredentials:
    return UserCredentials(sb.env["SANDBOX_TOKEN"])


def assert_recorded(sb: Sandbox, request: HttpRequest, path: str, status: int) -> None:
    record = sb.simkl.requests(path)[-1]
    assert record.method == "POST"
    assert record.path == path
    assert record.status == status
    assert record.body == request.json
    assert record.query == {"app-name": "revenge-scrobble", "app-version": "0.1"}
    sent = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "simkl-api-key": "[REDACTED]",
        "authorization": "Bearer [REDACTED]",
    }
    assert {name: record.headers.get(name) for name in sent} == sent
    assert record.user == "sandbox"


LIVE_CASES: list[tuple[str, ScrobbleWork, str]] = [
    ("start movie", work(S.START, HEAT, progress=1), "/scrobble/start"),
    ("start movie by title", work(S.START, HEAT_BY_TITLE, progress=1), "/scrobble/start"),
    ("pause episode", work(S.PAUSE, WIRE, progress=40), "/scrobble/pause"),
    ("pause anime", work(S.PAUSE, AOT, progress=40), "/scrobble/pause"),
    ("scrobble movie", work(S.SCROBBLE, HEAT, progress=92), "/scrobble/stop"),
    ("scrobble episode", work(S.SCROBBLE, WIRE_BY_TITLE, progress=80), "/scrobble/stop"),
    ("scrobble anime", work(S.SCROBBLE, BEBOP, progress=99.5), "/scrobble/stop"),
    ("scrobble bare anime", work(S.SCROBBLE, BEBOP_BARE, progress=85), "/scrobble/stop"),
    ("watched movie", work(S.WATCHED, HEAT), "/sync/history"),
    ("watched episode", work(S.WATCHED, WIRE), "/sync/history"),
    ("watched anime", work(S.WATCHED, BEBOP), "/sync/history"),
    ("watched franchise anime", work(S.WATCHED, AOT), "/sync/history"),
    ("rating movie", work(S.RATING, HEAT, rating=9), "/sync/ratings"),
]


@pytest.mark.parametrize(("case", "item", "path"), LIVE_CASES, ids=[c[0] for c in LIVE_CASES])
async def test_live_kind(
    sb: Sandbox, http: httpx.AsyncClient, case: str, item: ScrobbleWork, path: str
) -> None:
    client = live_client(sb)
    request = client.build(item, live_user(sb))
    answer = await send(http, request)
    outcome = client.classify(item, answer)
    assert outcome.kind is OutcomeKind.DONE, (outcome, answer.body)
    assert outcome.http_status == 201
    assert_recorded(sb, request, path, 201)


async def test_live_scrobble_lands_in_history(sb: Sandbox, http: httpx.AsyncClient) -> None:
    client, user = live_client(sb), live_user(sb)
    await send(http, client.build(work(S.SCROBBLE, WIRE, progress=95), user))
    await send(http, client.build(work(S.WATCHED, HEAT, occurred_at=AT), user))
    history = sb.simkl.state.history
    assert [(e.kind, e.season, e.number) for e in history] == [
        ("show", 1, 1),
        ("movie", None, None),
    ]
    assert history[1].watched_at == AT.timestamp()


async def test_live_repeat_stop_is_already_done(sb: Sandbox, http: httpx.AsyncClient) -> None:
    client, user = live_client(sb), live_user(sb)
    item = work(S.SCROBBLE, HEAT, progress=95)
    first = client.classify(item, await send(http, client.build(item, user)))
    # Sent again under other ids of the same movie: still the same play at Simkl.
    again = work(S.SCROBBLE, HEAT_BY_TMDB, progress=97)
    second = client.classify(again, await send(http, client.build(again, user)))
    assert first.kind is OutcomeKind.DONE
    assert second.kind is OutcomeKind.ALREADY_DONE
    assert second.http_status == 409
    assert "watched at" in second.reason


async def test_live_low_stop_is_not_watched(sb: Sandbox, http: httpx.AsyncClient) -> None:
    client = live_client(sb)
    item = work(S.SCROBBLE, HEAT, progress=50)
    outcome = client.classify(item, await send(http, client.build(item, live_user(sb))))
    assert outcome.kind is OutcomeKind.PERMANENT
    assert "as a pause" in outcome.reason


async def test_live_rate_limited_is_retry(sb: Sandbox, http: httpx.AsyncClient) -> None:
    sb.simkl.faults.rate_limit(1, retry_after=7, path_prefix="/scrobble/stop")
    client = live_client(sb)
    item = work(S.SCROBBLE, HEAT, progress=95)
    answer = await send(http, client.build(item, live_user(sb)))
    outcome = client.classify(item, answer)
    assert (outcome.kind, outcome.http_status, outcome.retry_after_s) == (OutcomeKind.RETRY, 429, 7)
    assert client.wait_before_next_s(answer) == 7
    retried = client.classify(item, await send(http, client.build(item, live_user(sb))))
    assert retried.kind is OutcomeKind.DONE


async def test_live_server_error_is_retry(sb: Sandbox, http: httpx.AsyncClient) -> None:
    sb.simkl.faults.error(502, 1)
    client = live_client(sb)
    item = work(S.WATCHED, WIRE)
    outcome = client.classify(item, await send(http, client.build(item, live_user(sb))))
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.RETRY, 502)


async def test_live_bad_token_is_reconnect(sb: Sandbox, http: httpx.AsyncClient) -> None:
    client = live_client(sb)
    item = work(S.START, HEAT, progress=1)
    outcome = client.classify(item, await send(http, client.build(item, UserCredentials("nope"))))
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.RECONNECT, 401)


async def test_live_unknown_ids_are_not_found(sb: Sandbox, http: httpx.AsyncClient) -> None:
    sb.simkl.seed("unknown_ids", [{"imdb": "tt9999999"}])
    ghost = content("movie", "Ghost", year=2001, external_ids={"imdb": "tt9999999"})
    client, user = live_client(sb), live_user(sb)
    for kind, status in ((S.SCROBBLE, 404), (S.WATCHED, 201), (S.RATING, 201)):
        item = work(kind, ghost, progress=95, rating=6)
        outcome = client.classify(item, await send(http, client.build(item, user)))
        assert (outcome.kind, outcome.reason) == (OutcomeKind.PERMANENT, "not found at Simkl")
        assert outcome.http_status == status
