"""Libre.fm: the Last.fm protocol's client and history reader as the registry builds them for
Libre.fm, with plain values where Libre.fm answers otherwise than Last.fm (GNU FM's ignored
codes, errors with HTTP 200, a page without scrobbles as error 7, strict ``from``), then
against the sandbox's Libre.fm fake, which verifies ``api_sig`` under Libre.fm's own key
and secret and answers as GNU FM does.

The protocol itself (signatures, batches, the error table) is tested once, for Last.fm, in
``test_lastfm_client.py`` and ``test_lastfm_errors.py``; the helpers come from there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from scrobble_dispatcher.transport import send
from scrobble_sandbox import Sandbox
from scrobble_sandbox.librefm.fake import LibrefmFake
from scrobble_shared.settings import load_settings
from scrobble_shared.trackers.history import ImportedItem, JobContext
from scrobble_shared.trackers.http import (
    AppCredentials,
    HttpResponse,
    OutcomeKind,
    UserCredentials,
)
from scrobble_shared.trackers.lastfm.client import LastfmClient
from scrobble_shared.trackers.lastfm.history import LastfmReader
from scrobble_shared.trackers.lastfm.signature import sign
from scrobble_shared.trackers.registry import tracker
from scrobble_shared.trackers.tracker import TrackerConfig
from scrobble_shared.work import WorkKind
from tests.unit.dispatcher.test_lastfm_client import answer, scrobbled, track, work

LIBREFM = tracker("librefm")
CONFIG = TrackerConfig(
    "librefm",
    "https://libre.fm/2.0/",
    "https://libre.fm/api/auth/",
    AppCredentials("any-key-of-32-characters-will-do", "any-secret"),
)
CONNECTION = UUID("6f1c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a02")
UNTIL = datetime(2026, 12, 1, 12, 0, 30, 600_000, tzinfo=UTC)
SINCE = datetime(2026, 11, 30, 8, 15, 0, 250_000, tzinfo=UTC)


def client(config: TrackerConfig = CONFIG) -> LastfmClient:
    built = LIBREFM.client(config)
    assert isinstance(built, LastfmClient)
    return built


def reader(config: TrackerConfig = CONFIG) -> LastfmReader:
    built = LIBREFM.reader(config)
    assert isinstance(built, LastfmReader)
    return built


def ctx(since: datetime | None = None, until: datetime = UNTIL) -> JobContext:
    return JobContext(CONNECTION, "sk", "sandbox", since, until)


def nested(code: int, text: str) -> dict[str, Any]:
    """An error as GNU FM's JSON encoder writes its XML error element."""
    return {"error": {"#text": text, "code": str(code)}}


# --- plain values ---------------------------------------------------------------------------


def test_the_registry_builds_the_protocol_under_libre_fm_name() -> None:
    lfm = client()
    assert (lfm.service, lfm.label, reader().service) == ("librefm", "Libre.fm", "librefm")
    request = lfm.build(work(), UserCredentials("sk"))
    assert (request.method, request.url) == ("POST", "https://libre.fm/2.0/")
    assert request.form is not None
    form = dict(request.form)
    signature, fmt = form.pop("api_sig"), form.pop("format")
    assert (form["api_key"], fmt) == ("any-key-of-32-characters-will-do", "json")
    assert signature == sign(form, "any-secret")
    assert LIBREFM.batch_size == 50


def test_gnu_fm_ignored_codes_say_what_they_mean_there() -> None:
    works = [work() for _ in range(6)]
    outcomes = client().classify_batch(works, scrobbled(0, 1, 2, 3, 4, 91))
    assert [(o.kind, o.reason) for o in outcomes] == [
        (OutcomeKind.DONE, "scrobbled"),
        (OutcomeKind.PERMANENT, "ignored by Libre.fm (code 1): artist empty"),
        (OutcomeKind.PERMANENT, "ignored by Libre.fm (code 2): track title empty"),
        # Last.fm's 3 and 4 the other way round.
        (OutcomeKind.PERMANENT, "ignored by Libre.fm (code 3): timestamp in the future"),
        (OutcomeKind.PERMANENT, "ignored by Libre.fm (code 4): timestamp too old"),
        # Sent again after an answer that never came: it is there, so it is done.
        (OutcomeKind.ALREADY_DONE, "already on Libre.fm (code 91): already scrobbled"),
    ]


@pytest.mark.parametrize(
    ("kind", "body", "outcome", "reason"),
    [
        (
            WorkKind.SCROBBLE,
            nested(16, "The service is temporarily unavailable, please try again."),
            OutcomeKind.RETRY,
            "Libre.fm error 16: The service is temporarily unavailable, please try again.",
        ),
        (
            WorkKind.RATING,
            nested(7, "Invalid resource specified"),
            OutcomeKind.PERMANENT,
            "Libre.fm error 7: Invalid resource specified",
        ),
        (
            WorkKind.NOW_PLAYING,
            {"error": 9, "message": "Invalid session key - Please re-authenticate"},
            OutcomeKind.RECONNECT,
            "Libre.fm error 9: Invalid session key - Please re-authenticate",
        ),
    ],
)
def test_errors_come_with_http_200_in_either_shape(
    kind: WorkKind, body: dict[str, Any], outcome: OutcomeKind, reason: str
) -> None:
    found = client().classify(work(kind, rating=10.0), answer(body))
    assert (found.kind, found.reason, found.http_status) == (outcome, reason, 200)


def test_import_reaches_a_second_back_as_libre_fm_ranges_are_strict() -> None:
    request = reader().request({"page": 3}, ctx(SINCE))
    assert request.params is not None
    assert (request.params["from"], request.params["to"], request.params["page"]) == (
        str(int(SINCE.timestamp()) - 1),
        str(int(UNTIL.timestamp())),
        "3",
    )
    assert "from" not in (reader().request({"page": 1}, ctx()).params or {})


def test_a_page_without_scrobbles_ends_the_import() -> None:
    empty = answer(nested(7, "Invalid resource specified"))
    assert reader().judge(empty) is None
    page = reader().read({"page": 2}, empty, ctx())
    assert (page.items, page.next_cursor, page.skipped) == ([], None, 0)
    refused = reader().judge(answer(nested(16, "try again")))
    assert refused is not None
    assert refused.kind is OutcomeKind.RETRY


def test_last_fm_still_fails_an_import_on_error_7() -> None:
    lastfm = LastfmReader("https://ws.example/2.0/", CONFIG.app)
    refused = lastfm.judge(answer({"error": 7, "message": "Invalid resource specified"}))
    assert refused is not None
    assert refused.kind is OutcomeKind.PERMANENT


# --- against the sandbox's Libre.fm fake ---------------------------------------------------


def fake(sb: Sandbox) -> LibrefmFake:
    return sb.fake("librefm", LibrefmFake)


def fake_config(sb: Sandbox, **env: str) -> TrackerConfig:
    return load_settings({**sb.env, **env}).tracker("librefm")


def fake_user(sb: Sandbox) -> UserCredentials:
    return UserCredentials(sb.env["SANDBOX_TOKEN"])


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


async def test_fake_now_playing_scrobble_and_love(sb: Sandbox, http: httpx.AsyncClient) -> None:
    lfm, me = client(fake_config(sb)), fake_user(sb)
    song = track(title="Hoppípolla", artists=["Sigur Rós"])
    calls = [
        work(WorkKind.NOW_PLAYING, song),
        work(content=song, at=ago(minutes=5).replace(microsecond=0)),
        work(WorkKind.RATING, song, rating=10.0),
    ]
    outcomes = [lfm.classify(w, await send(http, lfm.build(w, me))) for w in calls]
    assert [(o.kind, o.reason) for o in outcomes] == [
        (OutcomeKind.DONE, "now playing updated"),
        (OutcomeKind.DONE, "scrobbled"),
        (OutcomeKind.DONE, "loved"),
    ]
    methods = [(r.body["method"], r.status, r.user) for r in fake(sb).requests("/")]
    assert methods == [
        ("track.updateNowPlaying", 200, "sandbox"),
        ("track.scrobble", 200, "sandbox"),
        ("track.love", 200, "sandbox"),
    ]
    [stored] = fake(sb).state.scrobbles
    assert (stored.artist, stored.track) == ("Sigur Rós", "Hoppípolla")
    assert ("sandbox", "Sigur Rós", "Hoppípolla") in fake(sb).state.loves
    assert sb.lastfm.requests() == []  # Libre.fm's own fake, not Last.fm's


async def test_fake_batch_by_gnu_fm_rules(sb: Sandbox, http: httpx.AsyncClient) -> None:
    lfm, me = client(fake_config(sb)), fake_user(sb)
    times = [ago(minutes=300 - i) for i in range(50)]
    times[3] = ago(days=400)  # too old for Last.fm (14 days), not for Libre.fm
    times[7] = datetime(2001, 1, 1, tzinfo=UTC)  # before GNU FM's floor: code 4
    times[30] = datetime.now(UTC) + timedelta(hours=1)  # more than 5 min ahead: code 3
    works = [
        work(content=track(title=f"Track {i}", artists=[f"Artist {i} ø"]), at=at)
        for i, at in enumerate(times)
    ]
    outcomes = lfm.classify_batch(works, await send(http, lfm.build_batch(works, me)))
    assert [o.kind for o in outcomes].count(OutcomeKind.DONE) == 48
    assert outcomes[7].reason == "ignored by Libre.fm (code 4): timestamp too old"
    assert outcomes[30].reason == "ignored by Libre.fm (code 3): timestamp in the future"
    assert len(fake(sb).state.scrobbles) == 48

    again = lfm.classify_batch(works[:2], await send(http, lfm.build_batch(works[:2], me)))
    assert [o.kind for o in again] == [OutcomeKind.ALREADY_DONE] * 2
    assert len(fake(sb).state.scrobbles) == 48


async def test_fake_refuses_a_love_of_a_track_it_does_not_know_or_has(
    sb: Sandbox, http: httpx.AsyncClient
) -> None:
    lfm, me = client(fake_config(sb)), fake_user(sb)
    love = work(WorkKind.RATING, track(title="Unheard", artists=["Nobody"]), rating=10.0)
    unknown = lfm.classify(love, await send(http, lfm.build(love, me)))
    assert (unknown.kind, unknown.http_status) == (OutcomeKind.PERMANENT, 200)
    assert unknown.reason == "Libre.fm error 7: Invalid resource specified"
    fake(sb).seed("scrobbles", [{"artist": "Nobody", "track": "Unheard", "timestamp": 1.7e9}])
    first = lfm.classify(love, await send(http, lfm.build(love, me)))
    second = lfm.classify(love, await send(http, lfm.build(love, me)))
    assert (first.kind, second.kind) == (OutcomeKind.DONE, OutcomeKind.PERMANENT)


async def test_fake_checks_libre_fm_own_key_and_secret(
    sb: Sandbox, http: httpx.AsyncClient
) -> None:
    me = fake_user(sb)
    others = [
        fake_config(sb, LIBREFM_API_SECRET="not-the-secret"),
        fake_config(sb, LIBREFM_API_SECRET=sb.env["LASTFM_API_SECRET"]),
        fake_config(sb, LIBREFM_API_KEY=sb.env["LASTFM_API_KEY"]),
    ]
    reasons = []
    for config in others:
        lfm = client(config)
        outcome = lfm.classify(work(), await send(http, lfm.build(work(at=ago(minutes=5)), me)))
        assert (outcome.kind, outcome.http_status) == (OutcomeKind.PERMANENT, 200)
        reasons.append(outcome.reason.split(":")[0])
    assert reasons == ["Libre.fm error 13", "Libre.fm error 13", "Libre.fm error 10"]
    assert fake(sb).state.scrobbles == []


async def test_fake_revoked_session_asks_to_reconnect(sb: Sandbox, http: httpx.AsyncClient) -> None:
    fake(sb).revoke_session(sb.env["SANDBOX_TOKEN"])
    lfm = client(fake_config(sb))
    response = await send(http, lfm.build(work(at=ago(minutes=5)), fake_user(sb)))
    outcome = lfm.classify(work(), response)
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.RECONNECT, 200)


async def test_fake_server_trouble_is_retried(sb: Sandbox, http: httpx.AsyncClient) -> None:
    lfm, scrobble = client(fake_config(sb)), work(at=ago(minutes=5))
    fake(sb).faults.error(502)
    fake(sb).faults.rate_limit(count=1, retry_after=3)
    down = lfm.classify(scrobble, await send(http, lfm.build(scrobble, fake_user(sb))))
    assert (down.kind, down.http_status) == (OutcomeKind.RETRY, 502)
    slow = await send(http, lfm.build(scrobble, fake_user(sb)))
    limited = lfm.classify(scrobble, slow)
    assert (limited.kind, limited.retry_after_s, limited.rate_limited) == (
        OutcomeKind.RETRY,
        3.0,
        True,
    )
    assert lfm.wait_before_next_s(slow) == 3.0
    ok = lfm.classify(scrobble, await send(http, lfm.build(scrobble, fake_user(sb))))
    assert ok.kind is OutcomeKind.DONE


async def read_history(
    sb: Sandbox, http: httpx.AsyncClient, job: JobContext
) -> tuple[list[ImportedItem], list[int]]:
    """Every page of the history, as the import runner reads them; the pages asked for."""
    history, items = reader(fake_config(sb)), []
    cursor: dict[str, Any] | None = history.start(job)
    while cursor is not None:
        response: HttpResponse = await send(http, history.request(cursor, job))
        assert history.judge(response) is None, response.body[:200]
        page = history.read(cursor, response, job)
        items.extend(page.items)
        cursor = page.next_cursor
    pages = [int(r.query["page"]) for r in fake(sb).requests("/")]
    return items, pages


async def test_fake_history_reads_to_the_end_and_from_the_last_second(
    sb: Sandbox, http: httpx.AsyncClient
) -> None:
    base = 1_760_000_000
    fake(sb).seed(
        "scrobbles",
        [{"artist": "A", "track": f"T{n}", "timestamp": base + 60 * n} for n in range(450)],
    )
    until = datetime.fromtimestamp(base + 60 * 449 + 30.5, UTC)
    everything, pages = await read_history(sb, http, ctx(until=until))
    assert len(everything) == 450
    assert pages == [1, 2, 3]

    # Played in the very second the last import ended, and after it.
    since = until
    fake(sb).seed(
        "scrobbles",
        [
            {"artist": "A", "track": "Same second", "timestamp": int(since.timestamp())},
            {"artist": "A", "track": "Later", "timestamp": int(since.timestamp()) + 40},
        ],
    )
    fake(sb).log.clear()
    later = datetime.fromtimestamp(base + 60 * 460, UTC)
    new, pages = await read_history(sb, http, ctx(since, later))
    assert sorted(i.title or "" for i in new) == ["Later", "Same second"]
    # GNU FM counts pages over the whole history: the second page is its error 7.
    assert pages == [1, 2]
