"""The Trakt client: requests and outcomes as plain values, then the same requests sent to
the sandbox's Trakt fake (which enforces Trakt's rules) and its real answers classified."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

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
from scrobble_shared.trackers.trakt.client import ACCOUNT_LIMIT_REASON, TraktClient
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

API = "https://api.trakt.tv"
CLIENT_ID = "the-client-id"
TOKEN = "the-user-token"
AT = datetime(2026, 11, 20, 22, 4, 5, 678901, tzinfo=timezone(timedelta(hours=1)))
AT_Z = "2026-11-20T21:04:05.678Z"


def content(**fields: Any) -> Content:
    return Content.model_validate({"id": str(uuid4()), **fields})


def work(
    kind: WorkKind,
    item: Content,
    *,
    progress: float | None = None,
    rating: float | None = None,
    at: datetime = AT,
) -> ScrobbleWork:
    return scrobble_work("trakt", kind, item, at, progress_percent=progress, rating=rating)


def trakt(api_url: str = API, client_id: str = CLIENT_ID) -> TraktClient:
    return TraktClient(api_url=api_url, app=AppCredentials(client_id, "secret"))


def response(status: int, body: Any = None, **headers: str) -> HttpResponse:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return HttpResponse(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, raw)


# --- items and what Trakt should be sent for them ------------------------------------------

HEAT_ALL_IDS = content(
    type="movie",
    title="Heat",
    year=1995,
    external_ids={
        "trakt": 1,
        "trakt_slug": "heat-1995",
        "imdb": "tt0113277",
        "tmdb": 949,
        "tvdb": 5,  # not a movie id at Trakt: left out
    },
)
HEAT_ALL_IDS_SENT = {
    "title": "Heat",
    "year": 1995,
    "ids": {"trakt": 1, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949},
}
# The event model lets one trailing newline through on an IMDb id (it mirrors the schema).
HEAT_IMDB_NO_YEAR = content(type="movie", title="Heat", external_ids={"imdb": "tt0113277\n"})
HEAT_IMDB_NO_YEAR_SENT = {"title": "Heat", "ids": {"imdb": "tt0113277"}}
HEAT_TITLE_YEAR = content(type="movie", title="Heat", year=1995)
HEAT_TITLE_YEAR_SENT = {"title": "Heat", "year": 1995}

WIRE_SHOW = {
    "title": "The Wire",
    "year": 2002,
    "external_ids": {
        "trakt": 1390,
        "trakt_slug": "the-wire",
        "imdb": "tt0306414",
        "tmdb": 1438,
        "tvdb": 79126,
    },
}
WIRE_SHOW_SENT = {
    "title": "The Wire",
    "year": 2002,
    "ids": {"trakt": 1390, "slug": "the-wire", "imdb": "tt0306414", "tmdb": 1438, "tvdb": 79126},
}
EPISODE_OWN_IDS = content(
    type="episode",
    title="The Target",
    show=WIRE_SHOW,
    season=1,
    number=1,
    external_ids={"trakt": 73482, "tvdb": 349232, "imdb": "tt0749451"},
)
EPISODE_OWN_IDS_SENT = {"ids": {"trakt": 73482, "tvdb": 349232}}
# An episode's imdb id is not one Trakt is known to resolve: named through its show.
EPISODE_BY_SHOW = content(
    type="episode",
    title="The Detail",
    show=WIRE_SHOW,
    season=1,
    number=2,
    external_ids={"imdb": "tt0749450"},
)
EPISODE_SHOW_TITLE_YEAR = content(
    type="episode", title="Pilot", show={"title": "Lost", "year": 2004}, season=0, number=1
)

SCROBBLE_KINDS = [
    (WorkKind.START, "/scrobble/start"),
    (WorkKind.PAUSE, "/scrobble/pause"),
    (WorkKind.SCROBBLE, "/scrobble/stop"),
]
SCROBBLE_ITEMS = [
    ("movie with every id", HEAT_ALL_IDS, {"movie": HEAT_ALL_IDS_SENT}),
    ("movie by imdb, no year", HEAT_IMDB_NO_YEAR, {"movie": HEAT_IMDB_NO_YEAR_SENT}),
    ("movie by title and year", HEAT_TITLE_YEAR, {"movie": HEAT_TITLE_YEAR_SENT}),
    ("episode by its own ids", EPISODE_OWN_IDS, {"episode": EPISODE_OWN_IDS_SENT}),
    (
        "episode by show ids",
        EPISODE_BY_SHOW,
        {"show": WIRE_SHOW_SENT, "episode": {"season": 1, "number": 2}},
    ),
    (
        "special by show title and year",
        EPISODE_SHOW_TITLE_YEAR,
        {"show": {"title": "Lost", "year": 2004}, "episode": {"season": 0, "number": 1}},
    ),
]


@pytest.mark.parametrize(("kind", "path"), SCROBBLE_KINDS, ids=[k.value for k, _ in SCROBBLE_KINDS])
@pytest.mark.parametrize(
    ("case", "item", "sent"), SCROBBLE_ITEMS, ids=[c[0] for c in SCROBBLE_ITEMS]
)
def test_build_scrobble(kind, path, case, item, sent):
    request = trakt().build(work(kind, item, progress=42.5), UserCredentials(TOKEN))

    assert request.method == "POST"
    assert request.url == API + path
    assert request.json == {"progress": 42.5} | sent
    assert request.form is None
    assert request.params is None


def test_build_sends_every_trakt_header():
    request = trakt().build(work(WorkKind.START, HEAT_ALL_IDS), UserCredentials(TOKEN))

    assert dict(request.headers) == {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "trakt-api-key": CLIENT_ID,
        "trakt-api-version": "2",
        "Authorization": f"Bearer {TOKEN}",
    }


def test_build_joins_a_base_url_with_a_trailing_slash():
    request = trakt(api_url="http://fake/trakt-api/").build(
        work(WorkKind.WATCHED, HEAT_ALL_IDS), UserCredentials(TOKEN)
    )

    assert request.url == "http://fake/trakt-api/sync/history"


PROGRESS_CASES = [
    ("two decimals", WorkKind.PAUSE, 33.33333, 33.33),
    ("rounds up", WorkKind.PAUSE, 66.666, 66.67),
    ("over 100 clamped", WorkKind.SCROBBLE, 100.4, 100.0),
    ("below 0 clamped", WorkKind.START, -3.0, 0.0),
    ("start without progress at 0", WorkKind.START, None, 0.0),
    ("pause without progress at 0", WorkKind.PAUSE, None, 0.0),
]


@pytest.mark.parametrize(
    ("case", "kind", "given", "sent"), PROGRESS_CASES, ids=[c[0] for c in PROGRESS_CASES]
)
def test_build_progress(case, kind, given, sent):
    request = trakt().build(work(kind, HEAT_ALL_IDS, progress=given), UserCredentials(TOKEN))

    assert request.json["progress"] == sent


SYNC_ITEMS = [
    ("movie with every id", HEAT_ALL_IDS, "movies", HEAT_ALL_IDS_SENT),
    ("movie by title and year", HEAT_TITLE_YEAR, "movies", HEAT_TITLE_YEAR_SENT),
    ("episode by its own ids", EPISODE_OWN_IDS, "episodes", EPISODE_OWN_IDS_SENT),
]


@pytest.mark.parametrize(
    ("case", "item", "plural", "sent"), SYNC_ITEMS, ids=[c[0] for c in SYNC_ITEMS]
)
def test_build_history_add(case, item, plural, sent):
    request = trakt().build(work(WorkKind.WATCHED, item), UserCredentials(TOKEN))

    assert request.url == API + "/sync/history"
    assert request.json == {plural: [sent | {"watched_at": AT_Z}]}


def test_build_history_add_of_an_episode_by_its_show():
    request = trakt().build(work(WorkKind.WATCHED, EPISODE_BY_SHOW), UserCredentials(TOKEN))

    assert request.json == {
        "shows": [
            {
                "title": "The Wire",
                "year": 2002,
                "ids": WIRE_SHOW_SENT["ids"],
                "seasons": [{"number": 1, "episodes": [{"number": 2, "watched_at": AT_Z}]}],
            }
        ]
    }


@pytest.mark.parametrize(
    ("case", "item", "plural", "sent"), SYNC_ITEMS, ids=[c[0] for c in SYNC_ITEMS]
)
def test_build_rating(case, item, plural, sent):
    request = trakt().build(work(WorkKind.RATING, item, rating=8.0), UserCredentials(TOKEN))

    assert request.url == API + "/sync/ratings"
    assert request.json == {plural: [sent | {"rating": 8, "rated_at": AT_Z}]}


def test_build_rating_of_an_episode_by_its_show():
    request = trakt().build(
        work(WorkKind.RATING, EPISODE_SHOW_TITLE_YEAR, rating=9.0), UserCredentials(TOKEN)
    )

    assert request.json == {
        "shows": [
            {
                "title": "Lost",
                "year": 2004,
                "seasons": [
                    {"number": 0, "episodes": [{"number": 1, "rating": 9, "rated_at": AT_Z}]}
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    ("given", "sent"), [(1.0, 1), (7.5, 8), (8.5, 9), (7.4, 7), (10.0, 10), (0.2, 1), (10.6, 10)]
)
def test_build_rating_is_a_whole_number_from_1_to_10(given, sent):
    request = trakt().build(
        work(WorkKind.RATING, HEAT_ALL_IDS, rating=given), UserCredentials(TOKEN)
    )

    assert request.json["movies"][0]["rating"] == sent


@pytest.mark.parametrize(
    ("at", "sent"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (
            datetime(2026, 1, 2, 1, 4, 5, tzinfo=timezone(timedelta(hours=-2))),
            "2026-01-02T03:04:05.000Z",
        ),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000Z"),  # naive: taken as UTC
    ],
    ids=["utc", "milliseconds kept", "offset converted", "naive"],
)
def test_build_watched_at_is_iso_utc_with_z(at, sent):
    request = trakt().build(work(WorkKind.WATCHED, HEAT_ALL_IDS, at=at), UserCredentials(TOKEN))

    assert request.json["movies"][0]["watched_at"] == sent


UNSENDABLE = [
    (
        "movie without ids or year",
        work(WorkKind.START, content(type="movie", title="Heat")),
        'no id Trakt accepts: movie "Heat" has no trakt, slug, imdb or tmdb id and no year',
    ),
    (
        "movie with only ids Trakt does not take for movies",
        work(WorkKind.WATCHED, content(type="movie", title="Heat", external_ids={"tvdb": 5})),
        "no id Trakt accepts: movie",
    ),
    (
        "episode with no own ids and no show",
        work(WorkKind.START, content(type="episode", title="Pilot", season=1, number=1)),
        'no id Trakt accepts: episode S01E01 "Pilot" has no trakt or tvdb id and no show',
    ),
    (
        "episode with only an imdb id and no show",
        work(
            WorkKind.SCROBBLE,
            content(type="episode", title="Pilot", external_ids={"imdb": "tt1"}),
            progress=90,
        ),
        "has no trakt or tvdb id and no show",
    ),
    (
        "episode by show without season and number",
        work(WorkKind.WATCHED, content(type="episode", title="Pilot", show=WIRE_SHOW)),
        'no id Trakt accepts: episode The Wire "Pilot" has no trakt or tvdb id and no season',
    ),
    (
        "episode whose show has no id and no year",
        work(
            WorkKind.RATING,
            content(type="episode", title="Pilot", show={"title": "Lost"}, season=1, number=1),
            rating=5,
        ),
        'Lost S01E01 "Pilot" has no trakt or tvdb id, and its show has no id and no year',
    ),
    (
        "track",
        work(WorkKind.SCROBBLE, content(type="track", title="Song", artists=["A"]), progress=90),
        "Trakt takes movies and episodes, not track",
    ),
    (
        "anime episode",
        work(WorkKind.START, content(type="anime_episode", title="Ep", show={"title": "X"})),
        "Trakt takes movies and episodes, not anime episode",
    ),
    (
        "now playing",
        work(WorkKind.NOW_PLAYING, HEAT_ALL_IDS),
        "Trakt has no call for now_playing work",
    ),
    (
        "rating without a value",
        work(WorkKind.RATING, HEAT_ALL_IDS),
        "a Trakt rating needs a value from 1 to 10",
    ),
    (
        "stop without progress",
        work(WorkKind.SCROBBLE, HEAT_ALL_IDS),
        "a Trakt stop needs the progress",
    ),
    (
        "progress not a number",
        work(WorkKind.PAUSE, HEAT_ALL_IDS, progress=float("nan")),
        "progress nan is not a number Trakt takes",
    ),
]


@pytest.mark.parametrize(("case", "given", "reason"), UNSENDABLE, ids=[c[0] for c in UNSENDABLE])
def test_build_unsendable(case, given, reason):
    with pytest.raises(Unsendable) as raised:
        trakt().build(given, UserCredentials(TOKEN))

    assert reason in str(raised.value)


# --- classify ------------------------------------------------------------------------------

DATE = "Fri, 20 Nov 2026 21:04:05 GMT"
RATELIMIT = (
    '{"name": "AUTHED_API_POST_LIMIT", "period": 1, "limit": 1, "remaining": 0, '
    '"until": "2026-11-20T21:04:35.000Z"}'
)
MOVIE_NOT_FOUND = {
    "added": {"movies": 0, "episodes": 0},
    "not_found": {"movies": [{"ids": {"imdb": "tt0113277"}}], "shows": [], "episodes": []},
}
ALL_FOUND = {
    "added": {"movies": 1, "episodes": 0},
    "not_found": {"movies": [], "shows": [], "seasons": [], "episodes": [], "people": []},
}
D, A, R, F, P = (
    OutcomeKind.DONE,
    OutcomeKind.ALREADY_DONE,
    OutcomeKind.RETRY,
    OutcomeKind.REFRESH,
    OutcomeKind.PERMANENT,
)
START = work(WorkKind.START, HEAT_ALL_IDS, progress=1)
PAUSE = work(WorkKind.PAUSE, HEAT_ALL_IDS, progress=50)
STOP = work(WorkKind.SCROBBLE, HEAT_ALL_IDS, progress=95)
WATCHED = work(WorkKind.WATCHED, EPISODE_BY_SHOW)
RATING = work(WorkKind.RATING, HEAT_ALL_IDS, rating=7)

CLASSIFY = [
    ("start accepted", START, response(201, {"id": 0, "action": "start"}), D,
     "playback started at Trakt", None),
    ("pause accepted", PAUSE, response(201, {"id": 0, "action": "pause"}), D,
     "playback paused at Trakt", None),
    ("stop watched", STOP, response(201, {"id": 9, "action": "scrobble"}), D,
     "scrobbled to Trakt", None),
    ("stop kept as pause", STOP, response(201, {"id": 0, "action": "pause"}), D,
     "kept as paused at Trakt (below its 80 % watched mark)", None),
    ("history added (201)", WATCHED, response(201, ALL_FOUND), D, "added to Trakt history", None),
    ("history added (200)", WATCHED, response(200, ALL_FOUND), D, "added to Trakt history", None),
    ("rating added", RATING, response(201, ALL_FOUND), D, "rated 7/10 at Trakt", None),
    ("history answer that is not JSON", WATCHED, response(201, b"ok"), D,
     "added to Trakt history", None),
    ("history not found", WATCHED, response(201, MOVIE_NOT_FOUND), P,
     'not found at Trakt: The Wire S01E02 "The Detail"', None),
    ("rating not found", RATING, response(200, MOVIE_NOT_FOUND), P,
     'not found at Trakt: "Heat" (1995)', None),
    ("repeat stop", STOP,
     response(409, {"watched_at": "2026-11-20T21:00:00.000Z", "expires_at": "x"}), A,
     "already scrobbled at Trakt (watched at 2026-11-20T21:00:00.000Z)", None),
    ("409 without body", START, response(409), A, "already scrobbled at Trakt", None),
    ("token refused", START, response(401, {"error": "invalid_token"}), F,
     "Trakt refused the access token (HTTP 401)", None),
    ("429 with Retry-After", STOP, response(429, retry_after="3", x_ratelimit=RATELIMIT, date=DATE),
     R, "Trakt rate limit reached (HTTP 429)", 3.0),
    ("429 with Retry-After as a date", STOP,
     response(429, retry_after="Fri, 20 Nov 2026 21:04:15 GMT", date=DATE), R,
     "Trakt rate limit reached (HTTP 429)", 10.0),
    ("429 with only X-Ratelimit", RATING, response(429, x_ratelimit=RATELIMIT, date=DATE), R,
     "Trakt rate limit reached (HTTP 429)", 30.0),
    ("429 with X-Ratelimit but no Date", RATING, response(429, x_ratelimit=RATELIMIT), R,
     "Trakt rate limit reached (HTTP 429)", None),
    ("429 with unreadable X-Ratelimit", RATING, response(429, x_ratelimit="{", date=DATE), R,
     "Trakt rate limit reached (HTTP 429)", None),
    ("429 with nothing", START, response(429), R, "Trakt rate limit reached (HTTP 429)", None),
    # Not delay-seconds (RFC 9110 allows digits only): ignored, not "retry at once".
    ("429 with a negative Retry-After", START, response(429, retry_after="-4"), R,
     "Trakt rate limit reached (HTTP 429)", None),
    ("429 with a negative Retry-After and X-Ratelimit", START,
     response(429, retry_after="-4", x_ratelimit=RATELIMIT, date=DATE), R,
     "Trakt rate limit reached (HTTP 429)", 30.0),
    ("500", START, response(500), R, "Trakt is unavailable (HTTP 500)", None),
    ("502", PAUSE, response(502), R, "Trakt is unavailable (HTTP 502)", None),
    ("503 with Retry-After", WATCHED, response(503, retry_after="20"), R,
     "Trakt is unavailable (HTTP 503)", 20.0),
    ("504", STOP, response(504), R, "Trakt is unavailable (HTTP 504)", None),
    ("520", RATING, response(520), R, "Trakt is unavailable (HTTP 520)", None),
    ("521", RATING, response(521), R, "Trakt is unavailable (HTTP 521)", None),
    ("522", RATING, response(522), R, "Trakt is unavailable (HTTP 522)", None),
    ("420 account limit", WATCHED, response(420), P, ACCOUNT_LIMIT_REASON, None),
    ("400", START, response(400, {"error": "bad_request", "error_description": "bad json"}), P,
     "Trakt refused the request as malformed (HTTP 400): bad json", None),
    ("403", START, response(403, b"<html>Forbidden</html>"), P,
     "Trakt refused the app's API key (HTTP 403)", None),
    ("404 on a scrobble", STOP, response(404, {"error": "not_found"}), P,
     'not found at Trakt: "Heat" (1995) (HTTP 404): not_found', None),
    ("405", START, response(405), P, "Trakt does not allow this call (HTTP 405)", None),
    ("412", START, response(412), P,
     "Trakt refused the request (precondition failed) (HTTP 412)", None),
    ("422", STOP, response(422, {"error_description": "progress below 1% cannot be stopped"}), P,
     "Trakt could not process the request (HTTP 422): progress below 1% cannot be stopped",
     None),
    ("423", START, response(423), P, "the Trakt account is locked (HTTP 423)", None),
    ("426", RATING, response(426), P, "Trakt needs VIP for this (HTTP 426)", None),
    ("other 4xx", START, response(418), P, "Trakt refused the request (HTTP 418)", None),
    ("unexpected 3xx", START, response(302), P, "Trakt refused the request (HTTP 302)", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "given", "answer", "kind", "reason", "after_s"), CLASSIFY, ids=[c[0] for c in CLASSIFY]
)
def test_classify(case, given, answer, kind, reason, after_s):
    outcome = trakt().classify(given, answer)

    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert outcome.http_status == answer.status
    assert outcome.retry_after_s == after_s


WAITS = [
    ("nothing", response(201), None),
    ("Retry-After", response(429, retry_after="2", x_ratelimit=RATELIMIT, date=DATE), 2.0),
    ("window exhausted", response(201, x_ratelimit=RATELIMIT, date=DATE), 30.0),
    (
        "window with room",
        response(201, x_ratelimit=RATELIMIT.replace('"remaining": 0', '"remaining": 3'), date=DATE),
        None,
    ),
    ("window exhausted, no Date", response(201, x_ratelimit=RATELIMIT), None),
]


@pytest.mark.parametrize(("case", "answer", "wait"), WAITS, ids=[c[0] for c in WAITS])
def test_wait_before_next(case, answer, wait):
    assert trakt().wait_before_next_s(answer) == wait


def test_is_a_service_client():
    client: ServiceClient = trakt()

    assert client.service == "trakt"


# --- against the sandbox's Trakt fake --------------------------------------------------------

# Headers httpx adds on its own; everything else on the wire is the client's.
TRANSPORT_HEADERS = frozenset({"host", "accept", "accept-encoding", "connection", "content-length"})
RECORDED_HEADERS = {
    "content-type": "application/json",
    "user-agent": USER_AGENT,
    "trakt-api-key": "[REDACTED]",
    "trakt-api-version": "2",
    "authorization": "Bearer [REDACTED]",
}


def sandbox_client(sb: Sandbox) -> TraktClient:
    return trakt(api_url=sb.env["TRAKT_API_URL"], client_id=sb.env["TRAKT_CLIENT_ID"])


def sandbox_user(sb: Sandbox) -> UserCredentials:
    return UserCredentials(sb.env["SANDBOX_TOKEN"])


def assert_recorded(sb: Sandbox, request: HttpRequest, path: str, status: int) -> None:
    """The fake saw exactly the request built: method, path, headers and body."""
    assert request.url == sb.env["TRAKT_API_URL"] + path
    [record] = sb.trakt.requests(path)
    assert (record.method, record.path, record.status) == ("POST", path, status)
    sent = {k: v for k, v in record.headers.items() if k not in TRANSPORT_HEADERS}
    assert sent == RECORDED_HEADERS
    assert record.body == request.json


FAKE_KINDS = [
    (WorkKind.START, "/scrobble/start", {"progress": 12.345}),
    (WorkKind.PAUSE, "/scrobble/pause", {"progress": 50.0}),
    (WorkKind.SCROBBLE, "/scrobble/stop", {"progress": 91.5}),
    (WorkKind.WATCHED, "/sync/history", {}),
    (WorkKind.RATING, "/sync/ratings", {"rating": 8.0}),
]
FAKE_ITEMS = [
    ("movie by ids", HEAT_ALL_IDS),
    ("movie by title and year", HEAT_TITLE_YEAR),
    ("episode by its own ids", EPISODE_OWN_IDS),
    ("episode by show", EPISODE_BY_SHOW),
]
# (kind, item) -> why the fake does not take it yet: a strict xfail until it does.
FAKE_MISSING: dict[tuple[WorkKind, str], str] = {}


def fake_case(kind: WorkKind, path: str, extra: dict[str, float], name: str, item: Content) -> Any:
    missing = FAKE_MISSING.get((kind, name))
    marks = [pytest.mark.xfail(reason=missing, strict=True)] if missing else []
    return pytest.param(kind, path, extra, item, id=f"{kind.value}-{name}", marks=marks)


@pytest.mark.parametrize(
    ("kind", "path", "extra", "item"),
    [fake_case(k, p, e, n, i) for k, p, e in FAKE_KINDS for n, i in FAKE_ITEMS],
)
async def test_fake_accepts_each_kind(sb, http, kind, path, extra, item):
    client = sandbox_client(sb)
    given = work(kind, item, at=datetime.now(UTC) - timedelta(minutes=5), **extra)
    request = client.build(given, sandbox_user(sb))

    outcome = client.classify(given, await send(http, request))

    assert outcome.kind is OutcomeKind.DONE, outcome.reason
    assert_recorded(sb, request, path, 201)


async def test_fake_repeat_stop_is_already_done(sb, http):
    client = sandbox_client(sb)
    given = work(WorkKind.SCROBBLE, HEAT_ALL_IDS, progress=95.0)
    first = await send(http, client.build(given, sandbox_user(sb)))

    repeat = client.classify(given, await send(http, client.build(given, sandbox_user(sb))))

    assert client.classify(given, first).kind is OutcomeKind.DONE
    assert repeat.kind is OutcomeKind.ALREADY_DONE
    assert repeat.http_status == 409
    assert repeat.reason.startswith("already scrobbled at Trakt (watched at 20")
    assert [r.status for r in sb.trakt.requests("/scrobble/stop")] == [201, 409]


async def test_fake_injected_429_is_retry_after_its_retry_after(sb, http):
    client = sandbox_client(sb)
    given = work(WorkKind.START, EPISODE_BY_SHOW, progress=3.0)
    sb.trakt.faults.rate_limit(count=1, retry_after=7, path_prefix="/scrobble/start")

    answer = await send(http, client.build(given, sandbox_user(sb)))
    outcome = client.classify(given, answer)

    assert (outcome.kind, outcome.http_status, outcome.retry_after_s) == (
        OutcomeKind.RETRY,
        429,
        7.0,
    )
    assert client.wait_before_next_s(answer) == 7.0
    assert sb.trakt.requests("/scrobble/start")[0].fault == "rate_limit"


async def test_fake_write_limit_classifies_from_its_own_headers(sb, http):
    sb.trakt.rate_limits.enabled = True  # Trakt's 1 write per second per user
    client = sandbox_client(sb)
    given = work(WorkKind.PAUSE, HEAT_ALL_IDS, progress=30.0)
    await send(http, client.build(given, sandbox_user(sb)))

    answer = await send(http, client.build(given, sandbox_user(sb)))
    without_retry_after = HttpResponse(
        answer.status, {k: v for k, v in answer.headers.items() if k != "retry-after"}, answer.body
    )

    assert client.classify(given, answer).retry_after_s == 1.0
    # X-Ratelimit "until" against the answer's Date (whole seconds, so up to 2 s).
    after_s = client.classify(given, without_retry_after).retry_after_s
    assert after_s is not None
    assert 0.0 <= after_s <= 2.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [(503, OutcomeKind.RETRY), (520, OutcomeKind.RETRY), (420, OutcomeKind.PERMANENT)],
)
async def test_fake_injected_errors(sb, http, status, kind):
    client = sandbox_client(sb)
    given = work(WorkKind.WATCHED, HEAT_ALL_IDS)
    sb.trakt.faults.error(status, count=1, path_prefix="/sync/history")

    outcome = client.classify(given, await send(http, client.build(given, sandbox_user(sb))))

    assert (outcome.kind, outcome.http_status) == (kind, status)


async def test_fake_refused_token_is_refresh(sb, http):
    client = sandbox_client(sb)
    given = work(WorkKind.START, HEAT_ALL_IDS, progress=1.0)

    outcome = client.classify(
        given, await send(http, client.build(given, UserCredentials("expired-token")))
    )

    assert (outcome.kind, outcome.http_status) == (OutcomeKind.REFRESH, 401)


@pytest.mark.parametrize(
    ("kind", "extra", "reason"),
    [
        (WorkKind.SCROBBLE, {"progress": 90.0}, 'not found at Trakt: "Heat" (1995) (HTTP 404)'),
        (WorkKind.WATCHED, {}, 'not found at Trakt: "Heat" (1995)'),
        (WorkKind.RATING, {"rating": 6.0}, 'not found at Trakt: "Heat" (1995)'),
    ],
    ids=["scrobble 404", "history not_found", "ratings not_found"],
)
async def test_fake_unknown_item_is_permanent(sb, http, kind, extra, reason):
    sb.trakt.seed("unknown_ids", [{"imdb": "tt0113277"}])
    client = sandbox_client(sb)
    given = work(kind, HEAT_ALL_IDS, **extra)

    outcome = client.classify(given, await send(http, client.build(given, sandbox_user(sb))))

    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.reason.startswith(reason)
