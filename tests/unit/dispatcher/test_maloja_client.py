"""The Maloja client: the ListenBrainz protocol's client on the connection's own server,
named Maloja, with the listen shaped as Maloja reads it (exact JSON); then sent with httpx
to the sandbox's Maloja fake, which answers as Maloja 3.2.3 does. The protocol's own rules
(NUL, sizes, MBIDs, classification) are the ListenBrainz client's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from scrobble_dispatcher.transport import send
from scrobble_sandbox import Sandbox
from scrobble_sandbox.maloja.fake import MalojaFake
from scrobble_shared.events import Content
from scrobble_shared.settings import load_settings
from scrobble_shared.trackers.http import (
    USER_AGENT,
    HttpResponse,
    Outcome,
    OutcomeKind,
    ServiceClient,
    Unsendable,
    UserCredentials,
)
from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient
from scrobble_shared.trackers.registry import tracker
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

SERVER = "http://192.168.1.20:42010"
KEY = "Ao5Zw3b4kKTnbVgUq1N8Yf0Xh2LcRmDsE6pJ7tAuI9vWyOeQrF"
USER = UserCredentials(KEY, None, SERVER + "/")
STARTED = datetime(2026, 3, 1, 20, 15, 30, 999_000, tzinfo=UTC)
CLIENT_INFO = {"submission_client": "revenge-scrobble", "submission_client_version": "0.1"}

DUET: dict[str, Any] = {
    "type": "track",
    "id": "2f9a7b1c-0d3e-4f5a-8b6c-7d8e9f0a1b2c",
    "title": "I've Seen It All",
    "artists": ["Björk", "Thom Yorke"],
    "album": "Selmasongs",
    "duration_ms": 332_499,
    "external_ids": {"musicbrainz_recording": "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"},
}


def work(
    kind: WorkKind = WorkKind.SCROBBLE,
    content: dict[str, Any] | None = None,
    occurred_at: datetime = STARTED,
) -> ScrobbleWork:
    return scrobble_work(
        "maloja",
        kind,
        Content.model_validate(DUET if content is None else content),
        occurred_at,
        connection_id=UUID("7d1e4f38-2c1a-4d5e-9f80-1b2c3d4e5f60"),
        user_id=UUID("11111111-2222-4333-8444-555555555555"),
        dedupe_key=f"test:{uuid4()}",
    )


@pytest.fixture
def maloja() -> ListenBrainzClient:
    """As the registry builds it, from the settings' default server."""
    client = tracker("maloja").client(load_settings({}).tracker("maloja"))
    assert isinstance(client, ListenBrainzClient)
    return client


# --- requests ------------------------------------------------------------------------------


def test_is_the_listenbrainz_protocol_named_maloja(maloja: ListenBrainzClient) -> None:
    client: ServiceClient = maloja
    assert client.service == "maloja"
    assert maloja.api_url == "http://localhost:42010"


def test_a_listen_goes_to_the_connections_own_server(maloja: ListenBrainzClient) -> None:
    request = maloja.build(work(), USER)
    assert (request.method, request.url) == (
        "POST",
        "http://192.168.1.20:42010/apis/listenbrainz/1/submit-listens",
    )
    assert request.headers == {
        "Authorization": f"Token {KEY}",
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
    }
    assert KEY not in repr(request)
    # Artists joined where Maloja splits them; the length in the seconds it reads.
    assert request.json == {
        "listen_type": "single",
        "payload": [
            {
                "listened_at": 1772396130,
                "track_metadata": {
                    "artist_name": "Björk; Thom Yorke",
                    "track_name": "I've Seen It All",
                    "release_name": "Selmasongs",
                    "additional_info": {
                        "duration": 332,
                        "recording_mbid": "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11",
                        **CLIENT_INFO,
                    },
                },
            }
        ],
    }


def test_a_connection_naming_no_server_uses_the_configured_one(
    maloja: ListenBrainzClient,
) -> None:
    request = maloja.build(work(), UserCredentials(KEY))
    assert request.url == "http://localhost:42010/apis/listenbrainz/1/submit-listens"


@pytest.mark.parametrize(("duration_ms", "sent"), [(400, 1), (1_500, 2), (None, None)])
def test_a_length_is_whole_seconds_and_never_zero(
    maloja: ListenBrainzClient, duration_ms: int | None, sent: int | None
) -> None:
    content = {k: v for k, v in DUET.items() if k != "duration_ms"}
    if duration_ms is not None:
        content["duration_ms"] = duration_ms
    request = maloja.build(work(content=content), USER)
    info = request.json["payload"][0]["track_metadata"]["additional_info"]
    assert info.get("duration") == sent
    assert "duration_ms" not in info


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        (WorkKind.SCROBBLE, DUET | {"artists": ["\x00"]}, "Maloja needs an artist name"),
        (WorkKind.SCROBBLE, DUET | {"title": "\x00"}, "Maloja needs a track title"),
        (WorkKind.WATCHED, DUET, "Maloja takes no watched work"),
    ],
)
def test_unsendable_reasons_name_maloja(
    maloja: ListenBrainzClient, kind: WorkKind, content: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unsendable, match=message):
        maloja.build(work(kind, content), USER)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (HttpResponse(200, {}, b'{"status": "ok"}'), Outcome.done("accepted", 200)),
        (
            HttpResponse(401, {}, b'{"code": 401, "error": "Incorrect Authorization"}'),
            Outcome.reconnect("Incorrect Authorization", 401),
        ),
        (HttpResponse(401, {}, b""), Outcome.reconnect("the Maloja token was refused", 401)),
        (
            HttpResponse(502, {}, b"<html>gateway</html>"),
            Outcome.retry("Maloja answered HTTP 502", 502),
        ),
        (
            HttpResponse(409, {}, b'{"error": "Scrobble with the same timestamp already exists."}'),
            Outcome.permanent("Scrobble with the same timestamp already exists.", 409),
        ),
    ],
)
def test_answers_read_with_maloja_named(
    maloja: ListenBrainzClient, answer: HttpResponse, expected: Outcome
) -> None:
    assert maloja.classify(work(), answer) == expected


# --- against the sandbox's Maloja ----------------------------------------------------------


@pytest.fixture
def fake(sb: Sandbox) -> MalojaFake:
    return sb.fake("maloja", MalojaFake)


@pytest.fixture
def own(sb: Sandbox) -> UserCredentials:
    """The sandbox user's key, at the fake as the connection's own server."""
    return UserCredentials(sb.env["SANDBOX_TOKEN"], None, sb.env["MALOJA_API_URL"])


def recent() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


async def test_sandbox_keeps_the_listen_with_its_artists_and_length(
    fake: MalojaFake, maloja: ListenBrainzClient, own: UserCredentials, http: httpx.AsyncClient
) -> None:
    item = work(occurred_at=recent())
    request = maloja.build(item, own)
    assert maloja.classify(item, await send(http, request)) == Outcome.done("accepted", 200)
    [record] = fake.requests("/apis/listenbrainz/1/submit-listens")
    assert (record.status, record.headers["authorization"]) == (200, "Token [REDACTED]")
    [kept] = fake.snapshot()["scrobbles"]
    assert kept["time"] == int(item.occurred_at.timestamp())
    assert kept["track"] == {
        "artists": ["Björk", "Thom Yorke"],
        "title": "I've Seen It All",
        "album": {"artists": ["Björk", "Thom Yorke"], "albumtitle": "Selmasongs"},
        "length": 332,
    }


async def test_sandbox_the_same_listen_again_is_done_once(
    fake: MalojaFake, maloja: ListenBrainzClient, own: UserCredentials, http: httpx.AsyncClient
) -> None:
    item = work(occurred_at=recent())
    for _ in range(2):
        answer = await send(http, maloja.build(item, own))
        assert maloja.classify(item, answer).kind is OutcomeKind.DONE
    assert len(fake.snapshot()["scrobbles"]) == 1


async def test_sandbox_another_track_in_the_same_second_is_retried(
    fake: MalojaFake, maloja: ListenBrainzClient, own: UserCredentials, http: httpx.AsyncClient
) -> None:
    second = recent()  # once: two calls can fall either side of a second's turn
    await send(http, maloja.build(work(occurred_at=second), own))
    other = work(content=DUET | {"title": "Scatterheart"}, occurred_at=second)
    outcome = maloja.classify(other, await send(http, maloja.build(other, own)))
    assert (outcome.kind, outcome.http_status, outcome.reason) == (
        OutcomeKind.RETRY,
        500,
        "Unspecified server error.",
    )
    assert [s["track"]["title"] for s in fake.snapshot()["scrobbles"]] == ["I've Seen It All"]


async def test_sandbox_an_unknown_key_is_reconnect(
    fake: MalojaFake, maloja: ListenBrainzClient, http: httpx.AsyncClient, sb: Sandbox
) -> None:
    item = work(occurred_at=recent())
    stranger = UserCredentials(KEY, None, sb.env["MALOJA_API_URL"])
    outcome = maloja.classify(item, await send(http, maloja.build(item, stranger)))
    assert outcome == Outcome.reconnect("Incorrect Authorization", 401)
    assert fake.snapshot()["scrobbles"] == []


async def test_sandbox_told_to_fail_is_retried(
    fake: MalojaFake, maloja: ListenBrainzClient, own: UserCredentials, http: httpx.AsyncClient
) -> None:
    fake.faults.error(503, count=1)
    fake.faults.rate_limit(count=1, retry_after=4)
    item = work(occurred_at=recent())
    first = maloja.classify(item, await send(http, maloja.build(item, own)))
    assert (first.kind, first.http_status) == (OutcomeKind.RETRY, 503)
    limited = await send(http, maloja.build(item, own))
    assert maloja.classify(item, limited) == Outcome.slow_down("Too Many Requests", 429, 4.0)
    assert maloja.wait_before_next_s(limited) == 4.0
    assert maloja.classify(item, await send(http, maloja.build(item, own))).kind is OutcomeKind.DONE
