"""The AniList client: every document it can send validates against AniList's schema
(variables included), the pure decisions with plain values, and each step against the
sandbox's AniList fake over HTTP (recorded bodies and the fake's list state)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from graphql import GraphQLSchema, OperationDefinitionNode, build_schema, parse, validate
from graphql.execution.values import get_variable_values

from scrobble_dispatcher.transport import send
from scrobble_sandbox import Limit, Sandbox
from scrobble_sandbox.anilist.schema import schema_text as sandbox_schema_text
from scrobble_sandbox.credentials import SANDBOX_TOKEN
from scrobble_shared.trackers.anilist.client import (
    NOT_FOUND_REASON,
    AniListClient,
    ListEntry,
    MediaLookupNeeded,
    UnexpectedAnswer,
    list_status,
    parse_current_entry,
    parse_media_lookup,
    progress_to_save,
    score_raw,
    wait_before_next_s,
)
from scrobble_shared.trackers.anilist.queries import ALL_DOCUMENTS
from scrobble_shared.trackers.http import (
    USER_AGENT,
    HttpRequest,
    HttpResponse,
    OutcomeKind,
    ServiceClient,
    Unsendable,
    UserCredentials,
)
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work


def parse_current_progress(response: HttpResponse) -> int | None:
    """The viewer's progress on the entry an answer carries; None without an entry."""
    entry = parse_current_entry(response)
    return None if entry is None else entry.progress


# The reference schema (shared/data beside the repository); the sandbox ships a copy, used
# when the reference is not there (a checkout without it) and checked equal when it is.
SCHEMA_FILE = Path(os.environ.get("ANILIST_SCHEMA", "/work/shared/data/anilist/schema.graphqls"))
USER = UserCredentials(SANDBOX_TOKEN)
CLIENT = AniListClient("https://graphql.anilist.example")
_: ServiceClient = CLIENT  # mypy checks the protocol

# A media whose AniList id differs from its MyAnimeList id, so a test can tell them apart.
MEDIA_ID, MAL_ID, EPISODES = 101, 9001, 12


def work(
    kind: WorkKind = WorkKind.WATCHED,
    *,
    number: int | None = 3,
    episode_count: int | None = EPISODES,
    rating: float | None = None,
    anilist: int | None = MEDIA_ID,
    mal: int | None = None,
    on_show: bool = False,
) -> ScrobbleWork:

    ids = {k: v for k, v in {"anilist": anilist, "mal": mal}.items() if v is not None}
    content: dict[str, Any] = {"type": "anime_episode", "id": str(uuid4()), "title": "Ep"}
    show: dict[str, Any] = {"title": "Show"}
    (show if on_show else content)["external_ids"] = ids
    content["show"] = show
    if number is not None:
        content["number"] = number
    if episode_count is not None:
        content["episode_count"] = episode_count
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return scrobble_work("anilist", kind, content, at, dedupe_key="k", rating=rating)


def answer(status: int, body: Any, **headers: str) -> HttpResponse:
    names = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return HttpResponse(status, names, json.dumps(body).encode())


# --- (1) every document against the schema -------------------------------------------------


@cache
def schema() -> GraphQLSchema:
    if SCHEMA_FILE.is_file():
        return build_schema(SCHEMA_FILE.read_text("utf-8"))
    return build_schema(sandbox_schema_text())


@pytest.mark.skipif(not SCHEMA_FILE.is_file(), reason="reference schema not present")
def test_the_sandbox_serves_the_reference_schema() -> None:
    assert sandbox_schema_text() == SCHEMA_FILE.read_text("utf-8")


def every_request() -> list[HttpRequest]:
    """One request from every builder, so every document the client sends is covered."""
    return [
        CLIENT.build_media_lookup(MAL_ID),
        CLIENT.build_current_entry(MEDIA_ID, USER),
        CLIENT.build_save_progress(work(number=3), MEDIA_ID, USER),
        CLIENT.build_save_progress(work(number=12), MEDIA_ID, USER),
        CLIENT.build_save_progress(work(number=3), MEDIA_ID, USER, "REPEATING"),
        CLIENT.build_save_score(work(WorkKind.RATING, rating=8.5), MEDIA_ID, USER),
        CLIENT.build(work(), USER),
        CLIENT.build(work(WorkKind.RATING, rating=7.0), USER),
    ]


@pytest.mark.parametrize("document", ALL_DOCUMENTS, ids=lambda d: d.split("(")[0])
def test_document_validates_against_the_schema(document: str) -> None:
    assert validate(schema(), parse(document)) == []


def test_builders_send_only_known_documents_and_use_them_all() -> None:
    sent = {request.json["query"] for request in every_request()}
    assert sent == set(ALL_DOCUMENTS)


@pytest.mark.parametrize("request_", every_request(), ids=lambda r: str(r.json["variables"]))
def test_variables_coerce_to_the_declared_types(request_: HttpRequest) -> None:
    [operation] = parse(request_.json["query"]).definitions
    assert isinstance(operation, OperationDefinitionNode)
    coerced = get_variable_values(
        schema(), operation.variable_definitions or (), request_.json["variables"]
    )
    assert not isinstance(coerced, list), coerced
    assert coerced.coerced == request_.json["variables"]


def test_the_variable_check_would_catch_a_wrong_value() -> None:
    request = CLIENT.build_save_progress(work(), MEDIA_ID, USER)
    [operation] = parse(request.json["query"]).definitions
    assert isinstance(operation, OperationDefinitionNode)
    bad = request.json["variables"] | {"status": "WATCHING"}
    assert isinstance(
        get_variable_values(schema(), operation.variable_definitions or (), bad), list
    )


def test_request_shape() -> None:
    request = CLIENT.build_save_score(work(WorkKind.RATING, rating=8.0), MEDIA_ID, USER)
    assert (request.method, request.url) == ("POST", "https://graphql.anilist.example")
    assert request.headers["Authorization"] == f"Bearer {SANDBOX_TOKEN}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Type"] == "application/json"
    assert request.json["variables"] == {"mediaId": MEDIA_ID, "scoreRaw": 80}
    assert "Authorization" not in CLIENT.build_media_lookup(MAL_ID).headers


# --- (2) plain values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "wanted", "expected"),
    [(None, 1, 1), (None, 0, 0), (2, 3, 3), (3, 3, None), (5, 3, None), (0, 1, 1)],
)
def test_progress_to_save_never_lowers(current: int | None, wanted: int, expected: int | None):
    assert progress_to_save(current, wanted) == expected


@pytest.mark.parametrize(
    ("rating", "raw"), [(1, 10), (8.5, 85), (8.25, 83), (7.04, 70), (10, 100), (0, 0), (11, 100)]
)
def test_score_raw(rating: float, raw: int) -> None:
    assert score_raw(rating) == raw


@pytest.mark.parametrize(
    ("number", "count", "current", "status"),
    [
        (3, 12, None, "CURRENT"),
        (12, 12, None, "COMPLETED"),
        (13, 12, "CURRENT", "COMPLETED"),
        (3, None, None, "CURRENT"),
        (3, 12, "REPEATING", "REPEATING"),
        (12, 12, "REPEATING", "COMPLETED"),
        (3, 12, "PAUSED", "CURRENT"),
    ],
)
def test_list_status(number: int, count: int | None, current: str | None, status: str) -> None:
    assert list_status(number, count, current) == status


def test_save_progress_variables() -> None:
    last = CLIENT.build_save_progress(work(number=12), MEDIA_ID, USER)
    assert last.json["variables"] == {"mediaId": MEDIA_ID, "progress": 12, "status": "COMPLETED"}
    unknown_count = CLIENT.build_save_progress(work(number=30, episode_count=None), 7, USER)
    assert unknown_count.json["variables"] == {"mediaId": 7, "progress": 30, "status": "CURRENT"}


def test_build_picks_ids_and_refuses_what_it_cannot_send() -> None:
    assert CLIENT.build(work(anilist=55, on_show=True), USER).json["variables"]["mediaId"] == 55
    with pytest.raises(MediaLookupNeeded) as needed:
        CLIENT.build(work(anilist=None, mal=MAL_ID, on_show=True), USER)
    assert needed.value.mal_id == MAL_ID
    for unsendable in (
        work(anilist=None),
        work(number=None),
        work(WorkKind.RATING, rating=None),
        work(WorkKind.SCROBBLE),
    ):
        with pytest.raises(Unsendable):
            CLIENT.build(unsendable, USER)
    with pytest.raises(Unsendable):
        CLIENT.build_save_score(work(WorkKind.RATING), MEDIA_ID, USER)
    with pytest.raises(Unsendable):
        CLIENT.build_save_progress(work(number=None), MEDIA_ID, USER)


DATE = "Thu, 01 Jan 2026 00:00:00 GMT"  # epoch 1767225600
CLASSIFY_CASES: list[tuple[str, HttpResponse, OutcomeKind, str, float | None]] = [
    ("saved", answer(200, {"data": {"SaveMediaListEntry": {"id": 1}}}), OutcomeKind.DONE, "", None),
    (
        "invalid token",
        answer(400, {"errors": [{"message": "Invalid token", "status": 400}], "data": None}),
        OutcomeKind.RECONNECT,
        "Invalid token",
        None,
    ),
    (
        "unauthorized",
        answer(401, {"errors": [{"message": "Unauthorized.", "status": 401}], "data": None}),
        OutcomeKind.RECONNECT,
        "Unauthorized",
        None,
    ),
    (
        "invalid token with HTTP 200",
        answer(200, {"errors": [{"message": "Invalid token", "status": 400}], "data": None}),
        OutcomeKind.RECONNECT,
        "Invalid token",
        None,
    ),
    (
        "429 Retry-After",
        answer(
            429, {"errors": [{"message": "Too Many Requests.", "status": 429}]}, retry_after="7"
        ),
        OutcomeKind.RETRY,
        "rate limited",
        7.0,
    ),
    (
        "429 reset from Date",
        answer(429, {}, x_ratelimit_reset="1767225630", date=DATE),
        OutcomeKind.RETRY,
        "rate limited",
        30.0,
    ),
    (
        "429 in errors with HTTP 200",
        answer(200, {"errors": [{"message": "Too Many Requests.", "status": 429}], "data": None}),
        OutcomeKind.RETRY,
        "rate limited",
        None,
    ),
    (
        "500",
        answer(500, {"errors": [{"message": "Internal Server Error", "status": 500}]}),
        OutcomeKind.RETRY,
        "server error 500",
        None,
    ),
    ("502 HTML", HttpResponse(502, {}, b"<html>"), OutcomeKind.RETRY, "server error 502", None),
    (
        "query validation",
        answer(
            400,
            {"errors": [{"message": 'Cannot query field "x" on type "Media".', "status": 400}]},
        ),
        OutcomeKind.PERMANENT,
        'Cannot query field "x"',
        None,
    ),
    (
        "argument validation",
        answer(
            400,
            {
                "errors": [
                    {
                        "message": "validation",
                        "status": 400,
                        "validation": {"scoreRaw": ["The scoreRaw must be between 0 and 100."]},
                    }
                ],
                "data": {"SaveMediaListEntry": None},
            },
        ),
        OutcomeKind.PERMANENT,
        "validation: scoreRaw: The scoreRaw must be between 0 and 100.",
        None,
    ),
    (
        "404",
        answer(
            404, {"errors": [{"message": "Not Found.", "status": 404}], "data": {"Media": None}}
        ),
        OutcomeKind.PERMANENT,
        NOT_FOUND_REASON,
        None,
    ),
    (
        "Not Found. with HTTP 200",
        answer(200, {"errors": [{"message": "Not Found.", "status": 404}], "data": None}),
        OutcomeKind.PERMANENT,
        NOT_FOUND_REASON,
        None,
    ),
    ("200 without data", answer(200, {"data": None}), OutcomeKind.RETRY, "without data", None),
    ("418 bare", HttpResponse(418, {}, b""), OutcomeKind.PERMANENT, "HTTP 418", None),
]


@pytest.mark.parametrize(
    ("response", "kind", "reason", "after"),
    [c[1:] for c in CLASSIFY_CASES],
    ids=[c[0] for c in CLASSIFY_CASES],
)
def test_classify(response: HttpResponse, kind: OutcomeKind, reason: str, after: float | None):
    outcome = CLIENT.classify(work(), response)
    assert outcome.kind is kind
    assert reason in outcome.reason
    assert outcome.retry_after_s == after
    assert outcome.http_status == response.status


@pytest.mark.parametrize(
    ("response", "wait"),
    [
        (
            answer(200, {}, x_ratelimit_remaining="5", x_ratelimit_reset="1767225630", date=DATE),
            None,
        ),
        (
            answer(200, {}, x_ratelimit_remaining="0", x_ratelimit_reset="1767225642", date=DATE),
            42.0,
        ),
        (answer(200, {}, x_ratelimit_remaining="0", retry_after="9"), 9.0),
        (answer(200, {}, x_ratelimit_remaining="0"), 60.0),
        (answer(429, {}, retry_after="3", x_ratelimit_reset="1767225642", date=DATE), 3.0),
        (answer(429, {}, retry_after="Thu, 01 Jan 2026 00:00:05 GMT", date=DATE), 5.0),
        (answer(429, {}), 60.0),
        (answer(429, {}, retry_after="soon", date="not a date"), 60.0),
        (answer(429, {}, retry_after="Thu, 01 Jan 2026 00:00:05 GMT"), 60.0),
        (answer(429, {}, retry_after="-3", x_ratelimit_reset="1767225642", date=DATE), 42.0),
        (answer(429, {}, retry_after="inf"), 60.0),
        (answer(429, {}, retry_after="Thu, 01 Jan 2026 00:00:05 -0000", date=DATE), 5.0),
        (answer(200, {}, x_ratelimit_remaining="0", x_ratelimit_reset="nan", date=DATE), 60.0),
        (answer(200, {}, x_ratelimit_remaining="0", x_ratelimit_reset="soon", date=DATE), 60.0),
        (answer(200, {}), None),
    ],
)
def test_wait_before_next(response: HttpResponse, wait: float | None) -> None:
    assert wait_before_next_s(response) == wait
    assert CLIENT.wait_before_next_s(response) == wait


def test_parsers_with_plain_values() -> None:
    assert parse_media_lookup(answer(200, {"data": {"Media": {"id": 5}}})) == 5
    assert parse_media_lookup(answer(404, {"errors": [{"message": "Not Found."}]})) is None
    entry = {"data": {"Media": {"id": 5, "mediaListEntry": {"progress": 4, "status": "PAUSED"}}}}
    assert parse_current_entry(answer(200, entry)) == ListEntry(4, "PAUSED")
    assert parse_current_progress(answer(200, entry)) == 4
    no_entry = {"data": {"Media": {"id": 5, "mediaListEntry": None}}}
    assert parse_current_progress(answer(200, no_entry)) is None
    limited = answer(429, {"errors": [{"message": "Too Many Requests.", "status": 429}]})
    for parser in (parse_media_lookup, parse_current_progress):
        with pytest.raises(UnexpectedAnswer):
            parser(limited)


# --- (3) against the sandbox's AniList fake ------------------------------------------------


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    sandbox.reset()
    sandbox.disable_rate_limits()
    sandbox.anilist.seed(
        "media", [{"id": MEDIA_ID, "idMal": MAL_ID, "title": "Test", "episodes": EPISODES}]
    )
    return sandbox


@pytest.fixture
def anilist(sb: Sandbox) -> AniListClient:
    return AniListClient(sb.env["ANILIST_API_URL"])


def entries(sb: Sandbox) -> list[dict[str, Any]]:
    snapshot: dict[str, Any] = sb.anilist.snapshot()
    return [e for e in snapshot["entries"] if e["mediaId"] == MEDIA_ID]


async def test_watched_through_every_step(sb: Sandbox, anilist: AniListClient, http) -> None:
    sb.anilist.seed("entries", [{"mediaId": MEDIA_ID, "progress": 5, "status": "PAUSED"}])
    item = work(number=7, anilist=None, mal=MAL_ID, on_show=True)
    with pytest.raises(MediaLookupNeeded) as needed:
        anilist.build(item, USER)

    lookup = await send(http, anilist.build_media_lookup(needed.value.mal_id, USER))
    assert anilist.classify(item, lookup).kind is OutcomeKind.DONE
    media_id = parse_media_lookup(lookup)
    assert media_id == MEDIA_ID

    current = await send(http, anilist.build_current_entry(MEDIA_ID, USER))
    assert anilist.classify(item, current).kind is OutcomeKind.DONE
    assert parse_current_entry(current) == ListEntry(5, "PAUSED")
    assert progress_to_save(parse_current_progress(current), 7) == 7

    saved = await send(http, anilist.build_save_progress(item, MEDIA_ID, USER))
    assert anilist.classify(item, saved).kind is OutcomeKind.DONE
    assert [(e["progress"], e["status"]) for e in entries(sb)] == [(7, "CURRENT")]

    bodies = [r.body for r in sb.anilist.requests("/", method="POST")]
    assert bodies == [request.json for request in _expected_watched_requests(anilist, item)]
    last = sb.anilist.requests("/")[-1]
    assert last.headers["authorization"] == "Bearer [REDACTED]"
    assert last.headers["user-agent"] == USER_AGENT
    assert last.user == "sandbox"


def _expected_watched_requests(anilist: AniListClient, item: ScrobbleWork) -> list[HttpRequest]:
    return [
        anilist.build_media_lookup(MAL_ID, USER),
        anilist.build_current_entry(MEDIA_ID, USER),
        anilist.build_save_progress(item, MEDIA_ID, USER),
    ]


async def test_no_entry_yet_and_last_episode_completes(sb: Sandbox, anilist, http) -> None:
    current = await send(http, anilist.build_current_entry(MEDIA_ID, USER))
    assert parse_current_progress(current) is None
    item = work(number=EPISODES)
    saved = await send(http, anilist.build(item, USER))
    assert anilist.classify(item, saved).kind is OutcomeKind.DONE
    assert [(e["progress"], e["status"]) for e in entries(sb)] == [(EPISODES, "COMPLETED")]
    assert sb.anilist.requests("/")[-1].body["variables"] == {
        "mediaId": MEDIA_ID,
        "progress": EPISODES,
        "status": "COMPLETED",
    }


async def test_higher_progress_is_kept(sb: Sandbox, anilist, http) -> None:
    sb.anilist.seed("entries", [{"mediaId": MEDIA_ID, "progress": 9, "status": "CURRENT"}])
    current = await send(http, anilist.build_current_entry(MEDIA_ID, USER))
    assert progress_to_save(parse_current_progress(current), 4) is None
    assert entries(sb)[0]["progress"] == 9


async def test_unknown_mal_id_is_none(sb: Sandbox, anilist, http) -> None:
    lookup = await send(http, anilist.build_media_lookup(424242))
    assert parse_media_lookup(lookup) is None
    outcome = anilist.classify(work(), lookup)
    assert (outcome.kind, outcome.reason) == (OutcomeKind.PERMANENT, NOT_FOUND_REASON)


async def test_save_score(sb: Sandbox, anilist: AniListClient, http) -> None:
    item = work(WorkKind.RATING, rating=8.5)
    saved = await send(http, anilist.build_save_score(item, MEDIA_ID, USER))
    assert anilist.classify(item, saved).kind is OutcomeKind.DONE
    assert saved.json()["data"]["SaveMediaListEntry"]["score"] == 85
    assert [e["scoreRaw"] for e in entries(sb)] == [85]
    [recorded] = sb.anilist.requests("/")
    assert recorded.body == {
        "query": anilist.build_save_score(item, MEDIA_ID, USER).json["query"],
        "variables": {"mediaId": MEDIA_ID, "scoreRaw": 85},
    }


async def test_fault_429_is_retry_with_retry_after(sb: Sandbox, anilist, http) -> None:
    sb.anilist.faults.rate_limit(count=1, retry_after=4)
    item = work(WorkKind.RATING, rating=6.0)
    refused = await send(http, anilist.build(item, USER))
    outcome = anilist.classify(item, refused)
    assert (outcome.kind, outcome.retry_after_s, outcome.http_status) == (
        OutcomeKind.RETRY,
        4.0,
        429,
    )
    assert anilist.wait_before_next_s(refused) == 4.0
    assert entries(sb) == []


async def test_spent_limit_holds_the_next_call(sb: Sandbox, anilist, http) -> None:
    sb.anilist.rate_limits.enabled = True
    sb.anilist.rate_limits.per_minute = Limit(1, 60.0)
    first = await send(http, anilist.build_current_entry(MEDIA_ID, USER))
    assert anilist.classify(work(), first).kind is OutcomeKind.DONE
    assert first.header("X-RateLimit-Remaining") == "0"
    held = anilist.wait_before_next_s(first)
    assert held is not None
    assert 55 <= held <= 62
    second = await send(http, anilist.build_current_entry(MEDIA_ID, USER))
    outcome = anilist.classify(work(), second)
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.retry_after_s is not None
    assert 55 <= outcome.retry_after_s <= 61


async def test_server_error_is_retry(sb: Sandbox, anilist, http) -> None:
    sb.anilist.faults.error(503, 1)
    answered = await send(http, anilist.build_current_entry(MEDIA_ID, USER))
    assert anilist.classify(work(), answered).kind is OutcomeKind.RETRY


async def test_bad_token_is_reconnect(sb: Sandbox, anilist, http) -> None:
    item = work()
    refused = await send(http, anilist.build(item, UserCredentials("not-a-token")))
    outcome = anilist.classify(item, refused)
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.RECONNECT, 400)
    assert "Invalid token" in outcome.reason
    assert entries(sb) == []


async def test_unknown_media_is_permanent(sb: Sandbox, anilist, http) -> None:
    item = work(anilist=999999)
    current = await send(http, anilist.build_current_entry(999999, USER))
    assert anilist.classify(item, current).reason == NOT_FOUND_REASON
    with pytest.raises(UnexpectedAnswer):
        parse_current_progress(current)
    saved = await send(http, anilist.build(item, USER))
    outcome = anilist.classify(item, saved)
    assert outcome.kind is OutcomeKind.PERMANENT
    assert "mediaId: The selected media id is invalid." in outcome.reason
