"""The Last.fm client: signatures against hand-worked vectors, requests and outcomes with
plain values, then the same requests against the sandbox's Last.fm fake (which verifies
``api_sig`` exactly and records the form it received)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from scrobble_dispatcher.transport import send
from scrobble_sandbox import Limit, Sandbox
from scrobble_shared.events import Content, ContentType, ExternalIds
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
from scrobble_shared.trackers.lastfm.client import (
    MAX_BATCH,
    LastfmClient,
    UnsendableInBatch,
    sign,
)
from scrobble_shared.trackers.lastfm.errors import RATE_LIMIT_BACKOFF_S
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork
from tests.support.work import scrobble_work

KEY = "vector-api-key"
SECRET = "vector-shared-secret"
SK = "vector-session-key"
URL = "https://ws.audioscrobbler.com/2.0/"
CONNECTION = UUID("6f1c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a01")
MBID = "0b6c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a01"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

# --- hand-worked vectors ------------------------------------------------------------------
# Each concatenation was written out by hand in byte order and hashed once in a shell with
#   printf '%s' '<concatenation>' | md5sum
# artist[10] sorts before artist[1] because '0' (0x30) comes before ']' (0x5D).
BATCH_ITEMS = [
    ("Björk", "Jóga"),
    ("Múm", "Green Grass of Tunnel"),
    ("Amiina", "Seoul"),
    ("GusGus", "Over"),
    ("Emilíana Torrini", "Jungle Drum"),
    ("Ólafur Arnalds", "Near Light"),
    ("Hildur Guðnadóttir", "Bathroom Dance"),
    ("Jóhann Jóhannsson", "Flight from the City"),
    ("Kiasmos", "Blurred"),
    ("Samaris", "Góða tungl"),
    ("Sigur Rós", "Hoppípolla"),
]
BATCH_STRING = (
    "api_keyvector-api-key"
    "artist[0]Björkartist[10]Sigur Rósartist[1]Múmartist[2]Amiinaartist[3]GusGus"
    "artist[4]Emilíana Torriniartist[5]Ólafur Arnaldsartist[6]Hildur Guðnadóttir"
    "artist[7]Jóhann Jóhannssonartist[8]Kiasmosartist[9]Samaris"
    "methodtrack.scrobbleskvector-session-key"
    "timestamp[0]1700000000timestamp[10]1700000600timestamp[1]1700000060"
    "timestamp[2]1700000120timestamp[3]1700000180timestamp[4]1700000240"
    "timestamp[5]1700000300timestamp[6]1700000360timestamp[7]1700000420"
    "timestamp[8]1700000480timestamp[9]1700000540"
    "track[0]Jógatrack[10]Hoppípollatrack[1]Green Grass of Tunneltrack[2]Seoul"
    "track[3]Overtrack[4]Jungle Drumtrack[5]Near Lighttrack[6]Bathroom Dance"
    "track[7]Flight from the Citytrack[8]Blurredtrack[9]Góða tungl"
    "vector-shared-secret"
)
BATCH_MD5 = "2ddd1dbe2f6945c7035dec3f83386619"
NOW_PLAYING_STRING = (
    "albumHomogenicalbumArtistBjörkapi_keyvector-api-keyartistBjörkduration305"
    f"mbid{MBID}methodtrack.updateNowPlayingskvector-session-keytrackJógatrackNumber3"
    "vector-shared-secret"
)
NOW_PLAYING_MD5 = "289117c60682258b07decf4d7ba3e108"
# The now-playing vector: Björk's "Jóga" with every optional parameter.
NOW_PLAYING = {
    "method": "track.updateNowPlaying",
    "api_key": KEY,
    "sk": SK,
    "artist": "Björk",
    "track": "Jóga",
    "album": "Homogenic",
    "albumArtist": "Björk",
    "trackNumber": "3",
    "duration": "305",
    "mbid": MBID,
}
LOVE_STRING = (
    "api_keyvector-api-keyartistSigur Rósmethodtrack.loveskvector-session-key"
    "trackHoppípollavector-shared-secret"
)
LOVE_MD5 = "58e45da8a421461de23a85dfea64a78f"


def batch_vector_params() -> dict[str, str]:
    params = {"method": "track.scrobble", "api_key": KEY, "sk": SK}
    for i, (artist, track) in enumerate(BATCH_ITEMS):
        params |= {
            f"artist[{i}]": artist,
            f"track[{i}]": track,
            f"timestamp[{i}]": str(T0 + 60 * i),
        }
    return params


# --- plain values ---------------------------------------------------------------------------
def track(**changes: Any) -> Content:
    fields: dict[str, Any] = {
        "type": ContentType.TRACK,
        "id": "a1b2c3d4-0000-4000-8000-000000000001",
        "title": "Jóga",
        "artists": ["Björk"],
    }
    return Content(**(fields | changes))


FULL_TRACK = track(
    album="Homogenic",
    album_artist="Björk",
    track_number=3,
    duration_ms=305_000,
    external_ids=ExternalIds(musicbrainz_recording=MBID),
)


def work(
    kind: WorkKind = WorkKind.SCROBBLE,
    content: Content | None = None,
    at: datetime | None = None,
    rating: float | None = None,
    connection: UUID = CONNECTION,
) -> ScrobbleWork:
    return scrobble_work(
        "lastfm",
        kind,
        content or track(),
        at or datetime.fromtimestamp(T0, UTC),
        connection_id=connection,
        user_id=UUID("00000000-0000-4000-8000-000000000002"),
        dedupe_key="play:x:listen",
        rating=rating,
    )


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, headers or {}, raw)


def error(code: int, status: int = 200) -> HttpResponse:
    return answer({"error": code, "message": f"message {code}"}, status)


def scrobbled(*codes: int | str) -> HttpResponse:
    items = [{"ignoredMessage": {"code": str(c), "#text": f"text {c}"}} for c in codes]
    accepted = sum(1 for c in codes if str(c) == "0")
    attr = {"accepted": accepted, "ignored": len(codes) - accepted}
    return answer(
        {"scrobbles": {"scrobble": items[0] if len(items) == 1 else items, "@attr": attr}}
    )


client = LastfmClient(URL, AppCredentials(KEY, SECRET))
user = UserCredentials(SK)


def test_is_a_service_client():
    as_protocol: ServiceClient = client
    assert as_protocol.service == "lastfm"


# --- signature ------------------------------------------------------------------------------
def test_sign_matches_the_hand_worked_batch_vector():
    params = batch_vector_params()
    names = sorted(params, key=str.encode)
    assert names.index("artist[10]") < names.index("artist[1]")
    assert sign(params, SECRET) == BATCH_MD5
    unsigned = {"format": "json", "callback": "cb", "api_sig": "anything"}
    assert sign(params | unsigned, SECRET) == BATCH_MD5


def test_sign_matches_the_now_playing_and_love_vectors():
    assert sign(NOW_PLAYING, SECRET) == NOW_PLAYING_MD5
    love = {"method": "track.love", "api_key": KEY, "sk": SK, "artist": "Sigur Rós"}
    assert sign(love | {"track": "Hoppípolla"}, SECRET) == LOVE_MD5


def test_sign_depends_on_the_secret_and_on_which_index_holds_what():
    params = batch_vector_params()
    assert sign(params, SECRET + "x") != BATCH_MD5
    swapped = params | {"artist[1]": "Sigur Rós", "artist[10]": "Múm"}
    assert sign(swapped, SECRET) != BATCH_MD5


def test_vector_strings_are_what_the_names_and_values_spell():
    # Guards the literals above against a typo that would make the md5 prove nothing.
    for text, digest in [
        (BATCH_STRING, BATCH_MD5),
        (NOW_PLAYING_STRING, NOW_PLAYING_MD5),
        (LOVE_STRING, LOVE_MD5),
    ]:
        assert hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest() == digest
    for name, value in batch_vector_params().items():
        assert name + value in BATCH_STRING
    assert BATCH_STRING.endswith(SECRET)
    assert NOW_PLAYING_STRING.endswith(SECRET)
    assert LOVE_STRING.startswith("api_key" + KEY)


# --- building -------------------------------------------------------------------------------
def test_batch_of_eleven_is_the_vector():
    works = [
        work(content=track(title=t, artists=[a]), at=datetime.fromtimestamp(T0 + 60 * i, UTC))
        for i, (a, t) in enumerate(BATCH_ITEMS)
    ]
    request = client.build_batch(works, user)
    expected = batch_vector_params() | {"api_sig": BATCH_MD5, "format": "json"}
    assert request == HttpRequest("POST", URL, {"User-Agent": USER_AGENT}, form=expected)


def test_now_playing_sends_everything_known():
    request = client.build(work(WorkKind.NOW_PLAYING, FULL_TRACK), user)
    assert request.method == "POST"
    assert request.url == URL
    assert request.headers == {"User-Agent": USER_AGENT}
    assert request.json is None
    assert request.params is None
    assert request.form == NOW_PLAYING | {"api_sig": NOW_PLAYING_MD5, "format": "json"}


def test_love_sends_artist_and_track_only():
    content = track(title="Hoppípolla", artists=["Sigur Rós", "Jónsi"], album="Takk...")
    request = client.build(work(WorkKind.RATING, content, rating=9.0), user)
    assert request.form == {
        "method": "track.love",
        "api_key": KEY,
        "sk": SK,
        "artist": "Sigur Rós",
        "track": "Hoppípolla",
        "api_sig": LOVE_MD5,
        "format": "json",
    }


def test_single_scrobble_is_a_batch_of_one_at_the_start_of_the_play():
    start = datetime(2023, 11, 15, 0, 13, 20, tzinfo=timezone(timedelta(hours=2)))
    form = client.build(work(content=FULL_TRACK, at=start), user).form
    assert form is not None
    assert {k: v for k, v in form.items() if k not in ("api_sig",)} == {
        "method": "track.scrobble",
        "api_key": KEY,
        "sk": SK,
        "artist[0]": "Björk",
        "track[0]": "Jóga",
        "timestamp[0]": str(T0),
        "album[0]": "Homogenic",
        "albumArtist[0]": "Björk",
        "trackNumber[0]": "3",
        "duration[0]": "305",
        "mbid[0]": MBID,
        "format": "json",
    }
    assert form["api_sig"] == sign(form, SECRET)


def test_a_naive_time_is_read_as_utc():
    form = client.build(work(at=datetime(2023, 11, 14, 22, 13, 20)), user).form
    assert form is not None
    assert form["timestamp[0]"] == str(T0)


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        ({"album": "", "album_artist": "  "}, {"album", "albumArtist"}),
        ({"track_number": 0}, {"trackNumber"}),
        ({"duration_ms": 400}, {"duration"}),
        ({"external_ids": ExternalIds(imdb="tt0133093")}, {"mbid"}),
    ],
)
def test_unknown_optional_fields_are_left_out(changes, absent):
    form = client.build(work(WorkKind.NOW_PLAYING, track(**changes)), user).form
    assert form is not None
    assert set(form) == {"method", "api_key", "sk", "artist", "track", "api_sig", "format"}
    assert not absent & set(form)


def test_duration_is_rounded_to_seconds():
    form = client.build(work(WorkKind.NOW_PLAYING, track(duration_ms=305_600)), user).form
    assert form is not None
    assert form["duration"] == "306"


def test_batch_of_fifty():
    works = [work(at=datetime.fromtimestamp(T0 + i, UTC)) for i in range(MAX_BATCH)]
    form = client.build_batch(works, user).form
    assert form is not None
    assert len(form) == 3 * MAX_BATCH + 5
    assert form["artist[49]"] == "Björk"
    assert form["timestamp[49]"] == str(T0 + 49)
    assert form["api_sig"] == sign(form, SECRET)


@pytest.mark.parametrize(
    "works",
    [
        [],
        [work()] * (MAX_BATCH + 1),
        [work(), work(WorkKind.NOW_PLAYING)],
        [work(), work(connection=uuid4())],
    ],
    ids=["empty", "51", "not-all-scrobbles", "two-connections"],
)
def test_batches_the_caller_should_not_make(works):
    with pytest.raises(ValueError, match="batch"):
        client.build_batch(works, user)


@pytest.mark.parametrize(
    ("kind", "content", "reason"),
    [
        (WorkKind.SCROBBLE, track().model_copy(update={"artists": None}), "artist"),
        (WorkKind.NOW_PLAYING, track().model_copy(update={"artists": []}), "artist"),
        (WorkKind.SCROBBLE, track(artists=["   "]), "artist"),
        (WorkKind.RATING, track(title="   "), "title"),
        (WorkKind.SCROBBLE, track(type=ContentType.MOVIE), "only tracks"),
        (WorkKind.WATCHED, track(), "no call for watched"),
        (WorkKind.START, track(), "no call for start"),
    ],
)
def test_unsendable(kind, content, reason):
    with pytest.raises(Unsendable, match=reason):
        client.build(work(kind, content), user)


def test_a_rating_below_a_love_is_unsendable():
    with pytest.raises(Unsendable, match="not a love"):
        client.build(work(WorkKind.RATING, rating=6.5), user)


def test_an_unsendable_work_in_a_batch_says_which():
    works = [work(), work(), work(), work(content=track(artists=[" "]))]
    with pytest.raises(UnsendableInBatch, match="needs an artist") as caught:
        client.build_batch(works, user)
    assert caught.value.index == 3
    assert isinstance(caught.value, Unsendable)


# --- outcomes -------------------------------------------------------------------------------
ERRORS = [
    (11, 503, OutcomeKind.RETRY),
    (16, 503, OutcomeKind.RETRY),
    (16, 200, OutcomeKind.RETRY),
    (29, 429, OutcomeKind.RETRY),
    (9, 403, OutcomeKind.RECONNECT),
    (9, 200, OutcomeKind.RECONNECT),
    (8, 500, OutcomeKind.RETRY),
    (8, 200, OutcomeKind.RETRY),  # one table: "the backend failed, try again" (errors.py)
    (3, 400, OutcomeKind.PERMANENT),
    (4, 403, OutcomeKind.PERMANENT),
    (6, 400, OutcomeKind.PERMANENT),
    (6, 200, OutcomeKind.PERMANENT),
    (10, 403, OutcomeKind.PERMANENT),
    (13, 403, OutcomeKind.PERMANENT),
    (26, 403, OutcomeKind.PERMANENT),
]


@pytest.mark.parametrize(("code", "status", "kind"), ERRORS)
@pytest.mark.parametrize("work_kind", [WorkKind.NOW_PLAYING, WorkKind.SCROBBLE, WorkKind.RATING])
def test_errors_in_the_body_decide(code, status, kind, work_kind):
    outcome = client.classify(work(work_kind), error(code, status))
    assert outcome.kind is kind
    assert outcome.reason == f"Last.fm error {code}: message {code}"
    assert outcome.http_status == status
    expected_wait = RATE_LIMIT_BACKOFF_S if code == 29 else None
    assert outcome.retry_after_s == expected_wait
    assert client.wait_before_next_s(error(code, status)) == expected_wait


@pytest.mark.parametrize(("code", "status", "kind"), ERRORS)
def test_a_body_error_applies_to_the_whole_batch(code, status, kind):
    outcomes = client.classify_batch([work(), work(), work()], error(code, status))
    assert [o.kind for o in outcomes] == [kind] * 3


def test_error_code_as_text_is_read():
    outcome = client.classify(work(), answer({"error": "9", "message": "revoked"}, 403))
    assert outcome.kind is OutcomeKind.RECONNECT


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (answer(b"<html>bad gateway</html>", 502), OutcomeKind.RETRY),
        (answer(b"", 408), OutcomeKind.RETRY),
        (answer(b"<html>nope</html>", 404), OutcomeKind.PERMANENT),
        (answer(b"<lfm status='ok'/>", 200), OutcomeKind.RETRY),
        (answer([1, 2], 200), OutcomeKind.RETRY),
    ],
)
def test_answers_without_an_error_code_go_by_status(response, kind):
    for work_kind in (WorkKind.NOW_PLAYING, WorkKind.SCROBBLE, WorkKind.RATING):
        assert client.classify(work(work_kind), response).kind is kind


def test_http_429_without_a_body_waits():
    response = answer(b"", 429)
    outcome = client.classify(work(), response)
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.retry_after_s == RATE_LIMIT_BACKOFF_S
    assert client.wait_before_next_s(response) == RATE_LIMIT_BACKOFF_S


@pytest.mark.parametrize(("header", "wait"), [("3", 3.0), ("nan", 10.0), ("-1", 10.0), ("x", 10.0)])
def test_a_retry_after_header_is_honoured_when_sane(header, wait):
    response = answer({"error": 29, "message": "slow down"}, 429, {"retry-after": header})
    assert client.classify(work(), response).retry_after_s == wait
    assert client.wait_before_next_s(response) == wait


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        (
            {
                "retry-after": "Fri, 20 Nov 2026 21:04:35 GMT",
                "date": "Fri, 20 Nov 2026 21:04:05 GMT",
            },
            30.0,
        ),
        ({"retry-after": "Fri, 20 Nov 2026 21:04:35 GMT"}, RATE_LIMIT_BACKOFF_S),
    ],
)
def test_a_retry_after_date_counts_from_the_answers_date(
    headers: dict[str, str], wait: float
) -> None:
    response = answer({"error": 29, "message": "slow down"}, 429, headers)
    assert client.classify(work(), response).retry_after_s == wait
    assert client.wait_before_next_s(response) == wait


@pytest.mark.parametrize("response", [scrobbled(0), answer({}), answer(b"", 500), error(11)])
def test_no_wait_unless_rate_limited(response):
    assert client.wait_before_next_s(response) is None


def test_single_scrobble_accepted():
    outcome = client.classify(work(), scrobbled(0))
    assert (outcome.kind, outcome.reason, outcome.http_status) == (
        OutcomeKind.DONE,
        "scrobbled",
        200,
    )


def test_each_ignored_code_is_permanent_with_its_reason_in_order():
    works = [work() for _ in range(7)]
    outcomes = client.classify_batch(works, scrobbled(0, 1, 2, 3, 4, 5, 0))
    assert [o.kind for o in outcomes] == [OutcomeKind.DONE] + [OutcomeKind.PERMANENT] * 5 + [
        OutcomeKind.DONE
    ]
    assert [o.reason for o in outcomes[1:6]] == [
        "ignored by Last.fm (code 1): artist filtered",
        "ignored by Last.fm (code 2): track filtered",
        "ignored by Last.fm (code 3): timestamp too old",
        "ignored by Last.fm (code 4): timestamp in the future",
        "ignored by Last.fm (code 5): daily scrobble limit reached",
    ]


def test_an_unknown_ignored_code_keeps_lastfm_text():
    [outcome] = client.classify_batch([work()], scrobbled(7))
    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.reason == "ignored by Last.fm (code 7): text 7"


def test_integer_codes_and_missing_messages_are_read():
    body = {"scrobbles": {"scrobble": [{"ignoredMessage": {"code": 3}}, {}], "@attr": {}}}
    outcomes = client.classify_batch([work(), work()], answer(body))
    assert [o.kind for o in outcomes] == [OutcomeKind.PERMANENT, OutcomeKind.DONE]


def test_item_count_mismatch_trusts_only_a_clean_count():
    all_in = {"scrobbles": {"scrobble": [], "@attr": {"accepted": "2", "ignored": "0"}}}
    assert {o.kind for o in client.classify_batch([work(), work()], answer(all_in))} == {
        OutcomeKind.DONE
    }
    outcomes = client.classify_batch([work(), work()], scrobbled(0))
    assert [o.kind for o in outcomes] == [OutcomeKind.RETRY] * 2
    assert outcomes[0].reason == "Last.fm answered 1 items for 2 scrobbles"
    assert client.classify(work(), answer({"scrobbles": "?"})).kind is OutcomeKind.RETRY


def test_now_playing_outcomes():
    ok = {"nowplaying": {"ignoredMessage": {"code": "0", "#text": ""}}}
    assert client.classify(work(WorkKind.NOW_PLAYING), answer(ok)).kind is OutcomeKind.DONE
    assert client.classify(work(WorkKind.NOW_PLAYING), answer({})).kind is OutcomeKind.DONE
    ignored = {"nowplaying": {"ignoredMessage": {"code": "1", "#text": "Artist was ignored"}}}
    outcome = client.classify(work(WorkKind.NOW_PLAYING), answer(ignored))
    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.reason == "ignored by Last.fm (code 1): artist filtered"


def test_love_outcome():
    outcome = client.classify(work(WorkKind.RATING), answer({}))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.DONE, "loved")


# --- against the sandbox's Last.fm fake ----------------------------------------------------
REDACTED = "[REDACTED]"


def fake_client(sb: Sandbox, secret: str | None = None) -> LastfmClient:
    app = AppCredentials(sb.env["LASTFM_API_KEY"], secret or sb.env["LASTFM_API_SECRET"])
    return LastfmClient(sb.env["LASTFM_API_URL"], app)


def fake_user(sb: Sandbox) -> UserCredentials:
    return UserCredentials(sb.env["SANDBOX_TOKEN"])


def recent(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


def signed_fields(**fields: str) -> dict[str, str]:
    """What the fake records: the form with the secrets redacted."""
    return {
        "method": fields.pop("method"),
        "api_key": REDACTED,
        "sk": REDACTED,
        "api_sig": REDACTED,
        "format": "json",
        **fields,
    }


async def test_fake_now_playing(sb, http):
    lastfm = fake_client(sb)
    response = await send(http, lastfm.build(work(WorkKind.NOW_PLAYING, FULL_TRACK), fake_user(sb)))
    assert lastfm.classify(work(WorkKind.NOW_PLAYING), response).kind is OutcomeKind.DONE
    [record] = sb.lastfm.requests()
    assert (record.method, record.status, record.user) == ("POST", 200, "sandbox")
    assert {k.lower(): v for k, v in record.headers.items()}["user-agent"] == USER_AGENT
    assert record.body == signed_fields(
        method="track.updateNowPlaying",
        artist="Björk",
        track="Jóga",
        album="Homogenic",
        albumArtist="Björk",
        trackNumber="3",
        duration="305",
        mbid=MBID,
    )
    assert sb.lastfm.state.now_playing["sandbox"]["track"] == "Jóga"


async def test_fake_single_scrobble(sb, http):
    lastfm, started = fake_client(sb), recent(10).replace(microsecond=0)
    scrobble = work(content=track(title="Hoppípolla", artists=["Sigur Rós"]), at=started)
    response = await send(http, lastfm.build(scrobble, fake_user(sb)))
    outcome = lastfm.classify(scrobble, response)
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.DONE, 200)
    [record] = sb.lastfm.requests()
    stamp = str(int(started.timestamp()))
    assert record.body == signed_fields(
        method="track.scrobble",
        **{"artist[0]": "Sigur Rós", "track[0]": "Hoppípolla", "timestamp[0]": stamp},
    )
    [stored] = sb.lastfm.state.scrobbles
    assert (stored.artist, stored.track, stored.timestamp) == (
        "Sigur Rós",
        "Hoppípolla",
        int(stamp),
    )


async def test_fake_batch_of_fifty_with_ignored_items(sb, http):
    lastfm = fake_client(sb)
    times = [recent(300 - i) for i in range(MAX_BATCH)]
    times[7] = datetime.now(UTC) - timedelta(days=15)  # older than 14 days: code 3
    times[30] = datetime.now(UTC) + timedelta(hours=1)  # more than 5 min ahead: code 4
    works = [
        work(content=track(title=f"Track {i}", artists=[f"Artist {i} ø"]), at=at)
        for i, at in enumerate(times)
    ]
    response = await send(http, lastfm.build_batch(works, fake_user(sb)))
    outcomes = lastfm.classify_batch(works, response)
    kinds = [o.kind for o in outcomes]
    assert kinds.count(OutcomeKind.DONE) == MAX_BATCH - 2
    assert outcomes[7].kind is outcomes[30].kind is OutcomeKind.PERMANENT
    assert outcomes[7].reason == "ignored by Last.fm (code 3): timestamp too old"
    assert outcomes[30].reason == "ignored by Last.fm (code 4): timestamp in the future"
    [record] = sb.lastfm.requests()
    expected: dict[str, str] = {}
    for i, at in enumerate(times):
        expected[f"artist[{i}]"] = f"Artist {i} ø"
        expected[f"track[{i}]"] = f"Track {i}"
        expected[f"timestamp[{i}]"] = str(int(at.timestamp()))
    assert record.body == signed_fields(method="track.scrobble", **expected)
    assert len(sb.lastfm.state.scrobbles) == MAX_BATCH - 2


async def test_fake_love(sb, http):
    lastfm = fake_client(sb)
    love = work(WorkKind.RATING, track(title="Hoppípolla", artists=["Sigur Rós"]), rating=10.0)
    response = await send(http, lastfm.build(love, fake_user(sb)))
    assert lastfm.classify(love, response).kind is OutcomeKind.DONE
    [record] = sb.lastfm.requests()
    assert record.body == signed_fields(method="track.love", artist="Sigur Rós", track="Hoppípolla")
    assert ("sandbox", "Sigur Rós", "Hoppípolla") in sb.lastfm.state.loves


async def test_fake_refuses_a_wrong_secret(sb, http):
    lastfm = fake_client(sb, secret="not-the-secret")
    response = await send(http, lastfm.build(work(), fake_user(sb)))
    outcome = lastfm.classify(work(), response)
    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.reason.startswith("Last.fm error 13:")
    assert not sb.lastfm.state.scrobbles


async def test_fake_revoked_session_asks_to_reconnect(sb, http):
    sb.lastfm.revoke_session(sb.env["SANDBOX_TOKEN"])
    lastfm = fake_client(sb)
    response = await send(http, lastfm.build(work(WorkKind.RATING), fake_user(sb)))
    assert lastfm.classify(work(WorkKind.RATING), response).kind is OutcomeKind.RECONNECT


async def test_fake_server_error_is_retried_then_goes_through(sb, http):
    lastfm, scrobble = fake_client(sb), work(at=recent(5))
    sb.lastfm.faults.error(503)
    failed = lastfm.classify(scrobble, await send(http, lastfm.build(scrobble, fake_user(sb))))
    assert (failed.kind, failed.http_status) == (OutcomeKind.RETRY, 503)
    assert failed.reason.startswith("Last.fm error 11:")
    again = lastfm.classify(scrobble, await send(http, lastfm.build(scrobble, fake_user(sb))))
    assert again.kind is OutcomeKind.DONE


async def test_fake_rate_limit_fault_is_retried_after_its_header(sb, http):
    lastfm = fake_client(sb)
    sb.lastfm.faults.rate_limit(count=1, retry_after=3)
    response = await send(http, lastfm.build(work(at=recent(5)), fake_user(sb)))
    outcome = lastfm.classify(work(), response)
    assert (outcome.kind, outcome.retry_after_s) == (OutcomeKind.RETRY, 3.0)
    assert outcome.reason.startswith("Last.fm error 29:")
    assert lastfm.wait_before_next_s(response) == 3.0


async def test_fake_own_rate_limit_waits_the_default(sb, http):
    sb.lastfm.rate_limits.enabled = True
    sb.lastfm.rate_limits.per_key = Limit(1, 60.0)
    lastfm, love = fake_client(sb), work(WorkKind.RATING)
    first = await send(http, lastfm.build(love, fake_user(sb)))
    second = await send(http, lastfm.build(love, fake_user(sb)))
    assert lastfm.classify(love, first).kind is OutcomeKind.DONE
    outcome = lastfm.classify(love, second)
    assert (outcome.kind, outcome.retry_after_s) == (OutcomeKind.RETRY, RATE_LIMIT_BACKOFF_S)
    assert lastfm.wait_before_next_s(second) == RATE_LIMIT_BACKOFF_S
