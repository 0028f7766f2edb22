"""The ListenBrainz client: requests built from plain values (exact JSON), answers classified,
and the same requests sent with httpx to the sandbox fake, which validates like the server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from scrobble_dispatcher.transport import send
from scrobble_sandbox import Limit, Sandbox
from scrobble_shared.events import Content
from scrobble_shared.trackers.http import (
    USER_AGENT,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    ServiceClient,
    Unsendable,
    UserCredentials,
)
from scrobble_shared.trackers.listenbrainz.client import MAX_DURATION_MS, ListenBrainzClient
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

API = "https://api.listenbrainz.org/1"
TOKEN = "5a4db0c5-5a4d-4b0c-8000-0000000000ff"
USER = UserCredentials(TOKEN)
CONNECTION = UUID("7d1e4f38-2c1a-4d5e-9f80-1b2c3d4e5f60")
USER_ID = UUID("11111111-2222-4333-8444-555555555555")
STARTED = datetime(2026, 3, 1, 20, 15, 30, 999_000, tzinfo=UTC)
STARTED_TS = 1772396130  # STARTED in whole Unix seconds (rounded down)

RECORDING = "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"
RELEASE = "0b6c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a01"
RELEASE_GROUP = "f5093c06-23e3-404f-aeaa-40f72885ee3a"
ARTIST_1 = "f22942a1-6f70-4f48-866e-238cb2308fbd"
ARTIST_2 = "9c9f1380-2516-4fc9-a3e6-f9f61941d090"
CLIENT_INFO = {"submission_client": "revenge-scrobble", "submission_client_version": "0.1"}

FULL_CONTENT: dict[str, Any] = {
    "type": "track",
    "id": "2f9a7b1c-0d3e-4f5a-8b6c-7d8e9f0a1b2c",
    "title": "Windowlicker",
    "artists": ["Aphex Twin", "Richard D. James"],
    "album": "Windowlicker",
    "album_artist": "Aphex Twin",
    "track_number": 1,
    "duration_ms": 367_000,
    "external_ids": {
        "musicbrainz_recording": RECORDING,
        "musicbrainz_release": RELEASE,
        "musicbrainz_release_group": RELEASE_GROUP,
        "musicbrainz_artists": [ARTIST_1, ARTIST_2],
        "isrc": "GBBPW9900001",
    },
}
FULL_METADATA: dict[str, Any] = {
    "artist_name": "Aphex Twin, Richard D. James",
    "track_name": "Windowlicker",
    "release_name": "Windowlicker",
    "additional_info": {
        "duration_ms": 367_000,
        "tracknumber": 1,
        "recording_mbid": RECORDING,
        "release_mbid": RELEASE,
        "release_group_mbid": RELEASE_GROUP,
        "artist_mbids": [ARTIST_1, ARTIST_2],
        "isrc": "GBBPW9900001",
        **CLIENT_INFO,
    },
}
MINIMAL_CONTENT: dict[str, Any] = {
    "type": "track",
    "id": "3a9a7b1c-0d3e-4f5a-8b6c-7d8e9f0a1b2c",
    "title": "Xtal",
    "artists": ["Aphex Twin"],
}
MINIMAL_METADATA: dict[str, Any] = {
    "artist_name": "Aphex Twin",
    "track_name": "Xtal",
    "additional_info": CLIENT_INFO,
}


ABSENT = object()  # a content value that means "leave the property out"


def content_of(fields: dict[str, Any]) -> Content:
    return Content.model_validate({k: v for k, v in fields.items() if v is not ABSENT})


def work(
    kind: WorkKind = WorkKind.SCROBBLE,
    content: dict[str, Any] | None = None,
    occurred_at: datetime = STARTED,
    **changes: Any,
) -> ScrobbleWork:
    fields = MINIMAL_CONTENT if content is None else content
    return scrobble_work(
        "listenbrainz",
        kind,
        content_of(fields),
        occurred_at,
        **(
            {"connection_id": CONNECTION, "user_id": USER_ID, "dedupe_key": f"test:{uuid4()}"}
            | changes
        ),
    )


def response(status: int, body: Any = None, **headers: str) -> HttpResponse:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, {k.lower().replace("_", "-"): v for k, v in headers.items()}, raw)


@pytest.fixture
def lb() -> ListenBrainzClient:
    return ListenBrainzClient(API)


def expected_headers(token: str = TOKEN) -> dict[str, str]:
    return {
        "Authorization": f"Token {token}",
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
    }


# --- construction ------------------------------------------------------------------------


def test_is_a_service_client() -> None:
    client: ServiceClient = ListenBrainzClient(API + "/")
    assert client.service == "listenbrainz"
    assert ListenBrainzClient(API + "/").api_url == API


def test_api_url_must_end_in_1() -> None:
    with pytest.raises(ValueError, match="must end in /1"):
        ListenBrainzClient("https://api.listenbrainz.org")


# --- build: exact requests -----------------------------------------------------------------


def test_now_playing_is_playing_now_without_listened_at(lb: ListenBrainzClient) -> None:
    request = lb.build(work(WorkKind.NOW_PLAYING, FULL_CONTENT), USER)
    assert request == HttpRequest(
        "POST",
        f"{API}/submit-listens",
        headers=expected_headers(),
        json={"listen_type": "playing_now", "payload": [{"track_metadata": FULL_METADATA}]},
    )


def test_scrobble_is_single_listen_at_start_of_play(lb: ListenBrainzClient) -> None:
    request = lb.build(work(WorkKind.SCROBBLE, FULL_CONTENT), USER)
    assert request == HttpRequest(
        "POST",
        f"{API}/submit-listens",
        headers=expected_headers(),
        json={
            "listen_type": "single",
            "payload": [{"listened_at": STARTED_TS, "track_metadata": FULL_METADATA}],
        },
    )


def test_minimal_listen_has_only_names_and_client(lb: ListenBrainzClient) -> None:
    request = lb.build(work(), USER)
    assert request.json == {
        "listen_type": "single",
        "payload": [{"listened_at": STARTED_TS, "track_metadata": MINIMAL_METADATA}],
    }


def test_listened_at_of_other_offsets_and_naive_times(lb: ListenBrainzClient) -> None:
    plus_two = STARTED.astimezone(timezone(timedelta(hours=2)))
    naive = STARTED.replace(tzinfo=None)
    for moment in (plus_two, naive):
        assert lb.build(work(occurred_at=moment), USER).json["payload"][0]["listened_at"] == (
            STARTED_TS
        )


def test_rating_is_a_love_of_the_recording(lb: ListenBrainzClient) -> None:
    request = lb.build(work(WorkKind.RATING, FULL_CONTENT, rating=9.0), USER)
    assert request == HttpRequest(
        "POST",
        f"{API}/feedback/recording-feedback",
        headers=expected_headers(),
        json={"recording_mbid": RECORDING, "score": 1},
    )


def test_nul_is_stripped_everywhere(lb: ListenBrainzClient) -> None:
    content = FULL_CONTENT | {
        "title": "Window\x00licker",
        "artists": ["\x00Aphex Twin", "\x00", "Richard D. James\x00"],
        "album": "Window\x00licker",
        "external_ids": FULL_CONTENT["external_ids"] | {"isrc": "GBBPW99\x0000001"},
    }
    body = lb.build(work(content=content), USER).json
    assert body["payload"][0]["track_metadata"] == FULL_METADATA
    assert "\\u0000" not in json.dumps(body)


def test_nothing_but_nul_album_and_isrc_are_left_out(lb: ListenBrainzClient) -> None:
    content = MINIMAL_CONTENT | {"album": "\x00", "external_ids": {"isrc": "\x00 "}}
    assert lb.build(work(content=content), USER).json["payload"][0]["track_metadata"] == (
        MINIMAL_METADATA
    )


@pytest.mark.parametrize(
    ("duration_ms", "sent"),
    [(None, False), (1, True), (MAX_DURATION_MS, True), (MAX_DURATION_MS + 1, False)],
)
def test_duration_ms_only_when_known_and_allowed(
    lb: ListenBrainzClient, duration_ms: int | None, sent: bool
) -> None:
    content = MINIMAL_CONTENT | ({} if duration_ms is None else {"duration_ms": duration_ms})
    info = lb.build(work(content=content), USER).json["payload"][0]["track_metadata"][
        "additional_info"
    ]
    assert "duration" not in info
    assert info.get("duration_ms") == (duration_ms if sent else None)


@pytest.mark.parametrize(
    ("external_ids", "expected"),
    [
        ({"musicbrainz_recording": RECORDING}, {"recording_mbid": RECORDING}),
        ({"musicbrainz_release": RELEASE}, {"release_mbid": RELEASE}),
        ({"musicbrainz_release_group": RELEASE_GROUP}, {"release_group_mbid": RELEASE_GROUP}),
        ({"musicbrainz_artists": [ARTIST_2]}, {"artist_mbids": [ARTIST_2]}),
        ({"musicbrainz_artists": []}, {}),
        ({"isrc": "USRC17607839"}, {"isrc": "USRC17607839"}),
        ({"imdb": "tt0133093", "tmdb": 603}, {}),
    ],
)
def test_mbid_fields(
    lb: ListenBrainzClient, external_ids: dict[str, Any], expected: dict[str, Any]
) -> None:
    content = MINIMAL_CONTENT | {"external_ids": external_ids}
    info = lb.build(work(content=content), USER).json["payload"][0]["track_metadata"][
        "additional_info"
    ]
    assert info == expected | CLIENT_INFO


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        (WorkKind.SCROBBLE, {"artists": ABSENT}, "ListenBrainz needs an artist name"),
        (WorkKind.NOW_PLAYING, {"artists": ["\x00", " "]}, "ListenBrainz needs an artist name"),
        (WorkKind.SCROBBLE, {"title": "\x00\x00"}, "ListenBrainz needs a track title"),
        (WorkKind.NOW_PLAYING, {"title": "  "}, "ListenBrainz needs a track title"),
        (WorkKind.RATING, {}, "ListenBrainz feedback needs a recording MBID"),
        (
            WorkKind.RATING,
            {"external_ids": {"musicbrainz_release": RELEASE}},
            "ListenBrainz feedback needs a recording MBID",
        ),
        (WorkKind.WATCHED, {}, "ListenBrainz takes no watched work"),
        (WorkKind.START, {}, "ListenBrainz takes no start work"),
    ],
)
def test_unsendable(
    lb: ListenBrainzClient, kind: WorkKind, content: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsendable) as caught:
        lb.build(work(kind, MINIMAL_CONTENT | content), USER)
    assert str(caught.value) == message


def test_listen_before_listenbrainz_existed_is_unsendable(lb: ListenBrainzClient) -> None:
    with pytest.raises(Unsendable, match="before 2002-10-01"):
        lb.build(work(occurred_at=datetime(2002, 9, 30, 23, 59, 59, tzinfo=UTC)), USER)
    lb.build(work(occurred_at=datetime(2002, 10, 1, tzinfo=UTC)), USER)


# A listen over the 10,240 bytes one listen may take: 12 artists of 1,000 characters.
HUGE_CONTENT = MINIMAL_CONTENT | {"artists": [chr(ord("a") + i) * 1000 for i in range(12)]}


def test_single_listen_too_large_is_unsendable(lb: ListenBrainzClient) -> None:
    with pytest.raises(Unsendable, match="too large for ListenBrainz"):
        lb.build(work(content=HUGE_CONTENT), USER)


# --- build_batch ------------------------------------------------------------------------


def backlog(count: int, start: datetime = STARTED) -> list[ScrobbleWork]:
    return [
        work(
            content=MINIMAL_CONTENT | {"title": f"Track {i}"},
            occurred_at=start - timedelta(minutes=5 * i),
        )
        for i in range(count)
    ]


def test_import_of_one(lb: ListenBrainzClient) -> None:
    request = lb.build_batch(backlog(1), USER)
    assert request == HttpRequest(
        "POST",
        f"{API}/submit-listens",
        headers=expected_headers(),
        json={
            "listen_type": "import",
            "payload": [
                {
                    "listened_at": STARTED_TS,
                    "track_metadata": MINIMAL_METADATA | {"track_name": "Track 0"},
                }
            ],
        },
    )


def test_import_of_1000(lb: ListenBrainzClient) -> None:
    body = lb.build_batch(backlog(1000), USER).json
    assert body["listen_type"] == "import"
    assert [x["listened_at"] for x in body["payload"]] == [
        STARTED_TS - 300 * i for i in range(1000)
    ]
    assert body["payload"][999]["track_metadata"]["track_name"] == "Track 999"


@pytest.mark.parametrize("count", [0, 1001])
def test_import_count_outside_1_to_1000(lb: ListenBrainzClient, count: int) -> None:
    with pytest.raises(ValueError, match=f"1 to 1000 listens, not {count}"):
        lb.build_batch(backlog(count), USER)


def test_import_takes_only_scrobbles_of_one_connection(lb: ListenBrainzClient) -> None:
    with pytest.raises(ValueError, match="only scrobble work"):
        lb.build_batch([*backlog(2), work(WorkKind.NOW_PLAYING)], USER)
    with pytest.raises(ValueError, match="one connection"):
        lb.build_batch([*backlog(2), work(connection_id=uuid4())], USER)


def test_import_body_over_the_size_limit(lb: ListenBrainzClient) -> None:
    with pytest.raises(ValueError, match="too large for ListenBrainz"):
        lb.build_batch([work(content=HUGE_CONTENT)], USER)
    # The limit is an average: one big listen among small ones is fine, as for the server.
    lb.build_batch([work(content=HUGE_CONTENT), *backlog(2)], USER)


def test_import_with_an_unsendable_work(lb: ListenBrainzClient) -> None:
    with pytest.raises(Unsendable, match="artist name"):
        lb.build_batch([*backlog(2), work(content=MINIMAL_CONTENT | {"artists": ABSENT})], USER)


# --- classify ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (response(200, {"status": "ok"}), Outcome.done("accepted", 200)),
        (
            response(200, b"<html>portal</html>"),
            Outcome.retry("unexpected answer to HTTP 200", 200),
        ),
        (
            response(400, {"code": 400, "error": "Value for key listened_at is too high."}),
            Outcome.permanent("Value for key listened_at is too high.", 400),
        ),
        (response(400, b"bad"), Outcome.permanent("HTTP 400", 400)),
        (response(400, {"code": 400, "error": " "}), Outcome.permanent("HTTP 400", 400)),
        (response(404, {"code": 404, "error": "Not found"}), Outcome.permanent("Not found", 404)),
        (
            response(401, {"code": 401, "error": "Invalid authorization token."}),
            Outcome.reconnect("Invalid authorization token.", 401),
        ),
        (response(401), Outcome.reconnect("the ListenBrainz token was refused", 401)),
        (
            response(429, {"code": 429, "error": "slow down"}, Retry_After="7"),
            Outcome.slow_down("slow down", 429, 7.0),
        ),
        (
            response(429, X_RateLimit_Reset_In="4", X_RateLimit_Remaining="0"),
            Outcome.slow_down("ListenBrainz answered HTTP 429", 429, 4.0),
        ),
        (
            response(503, Retry_After="Wed, 21 Oct 2026 07:28:00 GMT"),
            Outcome.retry("ListenBrainz answered HTTP 503", 503, None),
        ),
        (
            response(
                503,
                Retry_After="Wed, 21 Oct 2026 07:28:00 GMT",
                Date="Wed, 21 Oct 2026 07:27:30 GMT",
            ),
            Outcome.retry("ListenBrainz answered HTTP 503", 503, 30.0),
        ),
        (
            response(429, Retry_After="-1", X_RateLimit_Reset_In="5"),
            Outcome.slow_down("ListenBrainz answered HTTP 429", 429, 5.0),
        ),
        (
            response(503, Retry_After="2", X_RateLimit_Reset_In="9"),
            Outcome.retry("ListenBrainz answered HTTP 503", 503, 2.0),
        ),
        (response(500), Outcome.retry("ListenBrainz answered HTTP 500", 500)),
        (response(502, {"message": "bad gateway"}), Outcome.retry("bad gateway", 502)),
    ],
)
def test_classify(lb: ListenBrainzClient, answer: HttpResponse, expected: Outcome) -> None:
    assert lb.classify(work(), answer) == expected


def test_classify_trims_long_messages(lb: ListenBrainzClient) -> None:
    outcome = lb.classify(work(), response(400, {"error": "x" * 5000}))
    assert outcome.kind is OutcomeKind.PERMANENT
    assert len(outcome.reason) == 500


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"X_RateLimit_Remaining": "0", "X_RateLimit_Reset_In": "6"}, 6.0),
        ({"X_RateLimit_Remaining": "0", "X_RateLimit_Reset_In": "0"}, 0.0),
        ({"X_RateLimit_Remaining": "1", "X_RateLimit_Reset_In": "6"}, None),
        ({"X_RateLimit_Remaining": "0"}, None),
        ({"X_RateLimit_Remaining": "0", "X_RateLimit_Reset_In": "soon"}, None),
        ({"X_RateLimit_Remaining": "0", "X_RateLimit_Reset_In": "-3"}, None),
        ({"X_RateLimit_Remaining": "0", "X_RateLimit_Reset_In": "nan"}, None),
        ({}, None),
    ],
)
def test_wait_before_next_s(
    lb: ListenBrainzClient, headers: dict[str, str], wait: float | None
) -> None:
    assert lb.wait_before_next_s(response(200, {"status": "ok"}, **headers)) == wait


# --- against the sandbox fake ------------------------------------------------------------


@pytest.fixture
def live(sb: Sandbox) -> ListenBrainzClient:
    return ListenBrainzClient(sb.env["LISTENBRAINZ_API_URL"])


@pytest.fixture
def sandbox_user(sb: Sandbox) -> UserCredentials:
    return UserCredentials(sb.env["SANDBOX_TOKEN"])


def recent() -> datetime:
    """A start the fake takes (not ahead of its clock), in whole seconds."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def assert_recorded(sb: Sandbox, path: str, request: HttpRequest, status: int = 200) -> None:
    [record] = sb.listenbrainz.requests(path)
    assert record.method == "POST"
    assert record.status == status
    assert record.body == request.json
    assert record.headers["authorization"] == "Token [REDACTED]"
    assert record.headers["user-agent"] == USER_AGENT
    assert record.headers["content-type"] == "application/json"


async def test_sandbox_playing_now(
    sb: Sandbox, live: ListenBrainzClient, sandbox_user: UserCredentials, http: httpx.AsyncClient
) -> None:
    item = work(WorkKind.NOW_PLAYING, FULL_CONTENT)
    request = live.build(item, sandbox_user)
    answer = await send(http, request)
    assert live.classify(item, answer) == Outcome.done("accepted", 200)
    assert live.wait_before_next_s(answer) is None
    assert_recorded(sb, "/submit-listens", request)
    assert sb.listenbrainz.state.playing_now["sandbox"]["track_metadata"] == FULL_METADATA
    assert sb.listenbrainz.state.listens == []


@pytest.mark.parametrize(
    "content",
    [
        FULL_CONTENT,
        MINIMAL_CONTENT,
        FULL_CONTENT | {"title": "Window\x00licker", "artists": ["Aphex\x00 Twin"]},
    ],
    ids=["full", "minimal", "nul"],
)
async def test_sandbox_single(
    sb: Sandbox,
    live: ListenBrainzClient,
    sandbox_user: UserCredentials,
    http: httpx.AsyncClient,
    content: dict[str, Any],
) -> None:
    started = recent()
    item = work(WorkKind.SCROBBLE, content, occurred_at=started + timedelta(milliseconds=400))
    request = live.build(item, sandbox_user)
    assert live.classify(item, await send(http, request)).kind is OutcomeKind.DONE
    assert_recorded(sb, "/submit-listens", request)
    [stored] = sb.listenbrainz.state.listens
    assert stored.user == "sandbox"
    assert stored.listen_type == "single"
    assert stored.listened_at == int(started.timestamp())
    assert stored.track_metadata == request.json["payload"][0]["track_metadata"]


async def test_sandbox_import_of_1000(
    sb: Sandbox, live: ListenBrainzClient, sandbox_user: UserCredentials, http: httpx.AsyncClient
) -> None:
    works = backlog(1000, start=recent())
    request = live.build_batch(works, sandbox_user)
    assert live.classify(works[0], await send(http, request)).kind is OutcomeKind.DONE
    assert_recorded(sb, "/submit-listens", request)
    stored = sb.listenbrainz.state.listens
    assert len(stored) == 1000
    assert {x.listen_type for x in stored} == {"import"}
    assert sorted(x.listened_at for x in stored) == sorted(
        int(w.occurred_at.timestamp()) for w in works
    )


async def test_sandbox_import_size_is_an_average(
    sb: Sandbox, live: ListenBrainzClient, sandbox_user: UserCredentials, http: httpx.AsyncClient
) -> None:
    works = [work(content=HUGE_CONTENT, occurred_at=recent()), *backlog(2, start=recent())]
    request = live.build_batch(works, sandbox_user)
    assert live.classify(works[0], await send(http, request)).kind is OutcomeKind.DONE
    assert len(sb.listenbrainz.state.listens) == 3


async def test_sandbox_feedback(
    sb: Sandbox, live: ListenBrainzClient, sandbox_user: UserCredentials, http: httpx.AsyncClient
) -> None:
    item = work(WorkKind.RATING, FULL_CONTENT, rating=10.0)
    request = live.build(item, sandbox_user)
    assert live.classify(item, await send(http, request)) == Outcome.done("accepted", 200)
    assert_recorded(sb, "/feedback/recording-feedback", request)
    assert sb.listenbrainz.state.feedback == {("sandbox", RECORDING): 1}


async def test_sandbox_rate_limit_fault_is_retry_with_its_retry_after(
    sb: Sandbox, live: ListenBrainzClient, sandbox_user: UserCredentials, http: httpx.AsyncClient
) -> None:
    sb.listenbrainz.faults.rate_limit(count=1, retry_after=7, path_prefix="/submit-listens")
    item = work(occurred_at=recent())
    answer = await send(http, live.build(item, sandbox_user))
    outcome = live.classify(item, answer)
    assert (outcome.kind, outcome.http_status, outcome.retry_after_s) == (
        OutcomeKind.RETRY,
        429,
        7.0,
    )
    assert live.wait_before_next_s(answer) == 7.0
    assert sb.listenbrainz.state.listens == []


async def test_sandbox_unavailable_is_retry(
    sb: Sandbox, live: ListenBrainzClient, sandbox_user: UserCredentials, http: httpx.AsyncClient
) -> None:
    sb.listenbrainz.faults.error(503, count=1)
    item = work(occurred_at=recent())
    outcome = live.classify(item, await send(http, live.build(item, sandbox_user)))
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.RETRY, 503)


@pytest.mark.parametrize("kind", [WorkKind.SCROBBLE, WorkKind.RATING])
async def test_sandbox_bad_token_is_reconnect(
    sb: Sandbox, live: ListenBrainzClient, http: httpx.AsyncClient, kind: WorkKind
) -> None:
    item = work(kind, FULL_CONTENT, occurred_at=recent())
    answer = await send(http, live.build(item, UserCredentials(TOKEN)))
    assert live.classify(item, answer) == Outcome.reconnect("Invalid authorization token.", 401)
    assert sb.listenbrainz.state.listens == []
    assert sb.listenbrainz.state.feedback == {}


async def test_sandbox_rate_limit_headers_hold_the_next_call(
    sb: Sandbox, live: ListenBrainzClient, sandbox_user: UserCredentials, http: httpx.AsyncClient
) -> None:
    sb.listenbrainz.rate_limits.enabled = True
    sb.listenbrainz.rate_limits.per_token = Limit(1, 30.0)
    first = work(occurred_at=recent())
    answer = await send(http, live.build(first, sandbox_user))
    assert live.classify(first, answer).kind is OutcomeKind.DONE
    wait = live.wait_before_next_s(answer)
    assert wait is not None
    assert 29.0 <= wait <= 30.0
    second = work(occurred_at=recent() - timedelta(minutes=5))
    refused = await send(http, live.build(second, sandbox_user))
    outcome = live.classify(second, refused)
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.RETRY, 429)
    assert outcome.retry_after_s is not None
    assert 29.0 <= outcome.retry_after_s <= 30.0
