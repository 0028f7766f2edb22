"""Libre.fm fake: the Last.fm fake's checks under Libre.fm's own key and secret (a Last.fm
key or a signature made with Last.fm's secret is refused), and GNU FM's answers where they
differ from Last.fm's: HTTP 200 for every error, the nested error shape, its ignored
codes, loves only of tracks it knows, strict ``from``/``to``, error 7 for a page without
scrobbles. Its web-auth page has Approve and Deny and calls ``cb`` back with a token."""

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from scrobble_sandbox import Sandbox
from scrobble_sandbox.lastfm.signature import sign
from scrobble_sandbox.librefm import LIBREFM_API_KEY, LIBREFM_API_SECRET
from scrobble_sandbox.librefm.fake import LibrefmFake
from tests.support.sandbox import form_call

SK = "5a4db0c5-5a4d-4b0c-8000-000000000001"
BASE = 1_760_000_000


def fake(sb: Sandbox) -> LibrefmFake:
    return sb.fake("librefm", LibrefmFake)


def signed(params: dict[str, str], secret: str = LIBREFM_API_SECRET) -> dict[str, str]:
    return params | {"api_sig": sign(params, secret), "format": "json"}


def write(method: str, **fields: str) -> dict[str, str]:
    return {"method": method, "api_key": LIBREFM_API_KEY, "sk": SK} | fields


def scrobble(*items: tuple[str, str, int]) -> dict[str, str]:
    params = write("track.scrobble")
    for i, (artist, track, at) in enumerate(items):
        params |= {f"artist[{i}]": artist, f"track[{i}]": track, f"timestamp[{i}]": str(at)}
    return params


async def call(
    sb: Sandbox, client: httpx.AsyncClient, params: dict[str, str], http: str = "POST"
) -> httpx.Response:
    return await form_call(client, sb.env["LIBREFM_API_URL"], params, http)


def lastfm_signed(params: dict[str, str]) -> dict[str, str]:
    return signed(params, "sandbox-lastfm-api-secret")


REFUSALS = [
    ("last.fm key", signed(write("track.love", api_key="sandbox-lastfm-api-key")), 10),
    ("last.fm secret", lastfm_signed(write("track.love", artist="A", track="B")), 13),
    ("unsigned", write("track.love", artist="A", track="B") | {"format": "json"}, 13),
    ("unknown session", signed(write("track.love", sk="nope", artist="A", track="B")), 9),
    ("no track", signed(write("track.updateNowPlaying", artist="A")), 6),
]


@pytest.mark.parametrize(("case", "params", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_refusals_come_with_http_200(sb, client, case, params, code):
    response = await call(sb, client, params)
    assert response.status_code == 200
    assert response.json() == {"error": code, "message": response.json()["message"]}
    assert fake(sb).snapshot()["loves"] == []


async def test_xml_errors_are_the_protocols_envelope(sb, client):
    params = signed(write("track.love", artist="A", track="B"), "wrong")
    params.pop("format")
    response = await call(sb, client, params)
    assert (response.status_code, response.headers["Content-Type"][:8]) == (200, "text/xml")
    assert '<lfm status="failed"><error code="13">' in response.text


async def test_gnu_fm_ignored_codes(sb, client):
    fresh = int(time.time()) - 600
    items = [
        ("A", "Kept", fresh),
        (" ", "No artist", fresh),
        ("A", " ", fresh),
        ("A", "Ahead", int(time.time()) + 3600),
        ("A", "Before 2002", 1_000_000_000),
        ("A", "A year ago", int(time.time()) - 365 * 86400),
        ("[unknown]", "No filter list", fresh),
    ]
    body = (await call(sb, client, signed(scrobble(*items)))).json()["scrobbles"]
    codes = [(s["ignoredMessage"]["code"], s["ignoredMessage"]["#text"]) for s in body["scrobble"]]
    assert codes == [
        ("0", ""),
        ("1", "Artist was ignored"),
        ("2", "Track was ignored"),
        ("3", "Timestamp is too new"),
        ("4", "Timestamp is too old"),
        ("0", ""),
        ("0", ""),
    ]
    again = (await call(sb, client, signed(scrobble(items[0])))).json()["scrobbles"]
    assert again["scrobble"]["ignoredMessage"] == {"code": "91", "#text": "Already scrobbled"}
    assert again["@attr"] == {"accepted": 0, "ignored": 1}
    assert len(fake(sb).snapshot()["scrobbles"]) == 3


async def test_a_love_needs_a_track_it_knows_and_only_once(sb, client):
    love = signed(write("track.love", artist="Aphex Twin", track="Xtal"))
    unknown = (await call(sb, client, love)).json()
    assert unknown == {"error": {"#text": "Invalid resource specified", "code": "7"}}
    playing = write("track.updateNowPlaying", artist="aphex twin", track="XTAL")
    assert "error" not in (await call(sb, client, signed(playing))).json()
    assert (await call(sb, client, love)).json() == {"lfm": {"#text": "", "status": "ok"}}
    assert (await call(sb, client, love)).json()["error"]["code"] == "7"


def recent_params(**extra: str) -> dict[str, str]:
    return {"method": "user.getRecentTracks", "api_key": LIBREFM_API_KEY, "user": "sandbox"} | {
        "format": "json",
        **extra,
    }


async def test_recent_tracks_ranges_are_strict_and_pages_count_everything(sb, client):
    fake(sb).seed(
        "scrobbles", [{"artist": "A", "track": f"T{i}", "timestamp": BASE + i} for i in range(120)]
    )
    window = {"from": str(BASE + 10), "to": str(BASE + 19), "limit": "5"}
    page = (await call(sb, client, recent_params(**window), http="GET")).json()["recenttracks"]
    assert [t["name"] for t in page["track"]] == ["T18", "T17", "T16", "T15", "T14"]
    assert page["@attr"] == {"user": "sandbox", "page": "1", "perPage": "5", "totalPages": "24"}
    past = recent_params(**window, page="3")
    empty = await call(sb, client, past, http="GET")
    assert (empty.status_code, empty.json()) == (
        200,
        {"error": {"#text": "Invalid resource specified", "code": "7"}},
    )


async def test_web_auth_page_under_libre_fm_name_and_key(sb, client):
    auth = sb.env["LIBREFM_AUTH_URL"]
    assert auth.endswith("/librefm/api/auth/")
    assert sb.env["LIBREFM_API_URL"].endswith("/librefm/2.0/")
    lastfm_key = await client.get(auth, params={"api_key": "sandbox-lastfm-api-key", "cb": "x"})
    assert lastfm_key.status_code == 400
    page = await client.get(auth, params={"api_key": LIBREFM_API_KEY, "cb": "http://h:9/cb?s=1"})
    assert "<title>Libre.fm (sandbox)</title>" in page.text
    assert 'id="approve"' in page.text
    assert 'id="deny"' in page.text
    decision = await client.post(
        f"{auth}decision",
        data={"cb": "http://h:9/cb?s=1", "token": "", "decision": "approve", "sandbox_user": "rj"},
    )
    query = parse_qs(urlsplit(decision.headers["Location"]).query)
    assert query["s"] == ["1"]
    session = {"method": "auth.getSession", "api_key": LIBREFM_API_KEY, "token": query["token"][0]}
    answer = (await call(sb, client, signed(session))).json()
    assert answer["session"]["name"] == "rj"
    assert fake(sb).state.sessions.user_for(answer["session"]["key"]) == "rj"
    # GNU FM: a used (or unknown, or unapproved) token is 14; no token at all is 4.
    assert (await call(sb, client, signed(session))).json()["error"] == 14
    no_token = {k: v for k, v in session.items() if k != "token"}
    assert (await call(sb, client, signed(no_token))).json()["error"] == 4
    assert sb.lastfm.requests() == []
