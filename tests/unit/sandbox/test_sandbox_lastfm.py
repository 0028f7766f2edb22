"""Last.fm fake: signatures (with a hand-worked vector), form posts, session keys, scrobble
batches and their ignored codes, recent-tracks paging, web auth."""

import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from scrobble_sandbox import Sandbox
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.lastfm.signature import sign, signature_base
from scrobble_sandbox.lastfm.state import AuthToken
from tests.support.sandbox import form_call

KEY = "sandbox-lastfm-api-key"
SECRET = "sandbox-lastfm-api-secret"
SK = "5a4db0c5-5a4d-4b0c-8000-000000000001"

# Worked by hand: the concatenation below was typed into a shell and hashed with
#   printf '%s' "<string>" | md5sum
# Names in byte order: artist[10] sorts before artist[1] because '0' (0x30) < ']' (0x5D).
VECTOR_PARAMS = {
    "method": "track.scrobble",
    "api_key": KEY,
    "sk": SK,
    "artist[0]": "Björk",
    "track[0]": "Jóga",
    "timestamp[0]": "1700000000",
    "artist[1]": "Múm",
    "track[1]": "Green Grass of Tunnel",
    "timestamp[1]": "1700000100",
    "artist[10]": "Sigur Rós",
    "track[10]": "Hoppípolla",
    "timestamp[10]": "1700000200",
}
VECTOR_STRING = (
    f"api_key{KEY}artist[0]Björkartist[10]Sigur Rósartist[1]Múmmethodtrack.scrobblesk{SK}"
    "timestamp[0]1700000000timestamp[10]1700000200timestamp[1]1700000100"
    f"track[0]Jógatrack[10]Hoppípollatrack[1]Green Grass of Tunnel{SECRET}"
)
VECTOR_MD5 = "57135f83bdef3c63dcce70cffdf9cd9a"
# The doc's shape: md5("api_key" + K + "method" + "auth.getSession" + "token" + T + SECRET).
SESSION_TOKEN = "lt0123456789abcdef0123456789abcdef"
SESSION_MD5 = "621d9573de2c3c71d1af0cc2c2da3085"


def signed(params: dict[str, str]) -> dict[str, str]:
    return params | {"api_sig": sign(params, SECRET), "format": "json"}


async def call(
    sb: Sandbox, client: httpx.AsyncClient, params: dict[str, str], http: str = "POST"
) -> httpx.Response:
    return await form_call(client, sb.env["LASTFM_API_URL"], params, http)


def recent(offset: int = 0) -> str:
    return str(int(time.time()) - 600 + offset)


def test_vector_matches_hand_computed_md5():
    assert signature_base(VECTOR_PARAMS, SECRET) == VECTOR_STRING
    assert sign(VECTOR_PARAMS, SECRET) == VECTOR_MD5
    assert sign(VECTOR_PARAMS | {"format": "json", "callback": "cb"}, SECRET) == VECTOR_MD5


async def test_fake_accepts_the_vector_and_rejects_natural_order(sb, client):
    sb.lastfm.state.max_age = 10**10  # the vector's timestamps are from 2023
    good = await call(sb, client, VECTOR_PARAMS | {"api_sig": VECTOR_MD5, "format": "json"})
    assert good.status_code == 200, good.text
    assert good.json()["scrobbles"]["@attr"] == {"accepted": 3, "ignored": 0}
    # A client that sorts artist[1] before artist[10] (natural order) signs a different string.
    natural = sorted(
        VECTOR_PARAMS,
        key=lambda n: (n.split("[")[0], int(n[n.find("[") + 1 : -1]) if "[" in n else -1),
    )
    wrong = hashlib.md5(
        ("".join(n + VECTOR_PARAMS[n] for n in natural) + SECRET).encode(), usedforsecurity=False
    ).hexdigest()
    assert wrong != VECTOR_MD5
    bad = await call(sb, client, VECTOR_PARAMS | {"api_sig": wrong, "format": "json"})
    assert bad.json()["error"] == 13
    assert len(sb.lastfm.snapshot()["scrobbles"]) == 3


async def test_get_session_with_the_documented_vector(sb, client):
    sb.lastfm.state.tokens[SESSION_TOKEN] = AuthToken(created=now(), user="sandbox")
    params = {"method": "auth.getSession", "api_key": KEY, "token": SESSION_TOKEN}
    response = await call(
        sb, client, params | {"api_sig": SESSION_MD5, "format": "json"}, http="GET"
    )
    session = response.json()["session"]
    assert session["name"] == "sandbox"
    assert sb.lastfm.state.sessions.user_for(session["key"]) == "sandbox"


def now_playing(**extra: str) -> dict[str, str]:
    return {
        "method": "track.updateNowPlaying",
        "api_key": KEY,
        "sk": SK,
        "artist": "Aphex Twin",
        "track": "Windowlicker",
    } | extra


def one_scrobble(**extra: str) -> dict[str, str]:
    return {
        "method": "track.scrobble",
        "api_key": KEY,
        "sk": SK,
        "artist[0]": "Aphex Twin",
        "track[0]": "Windowlicker",
        "timestamp[0]": recent(),
    } | extra


def tampered(params: dict[str, str]) -> dict[str, str]:
    out = signed(params)
    out["api_sig"] = ("0" if out["api_sig"][0] != "0" else "1") + out["api_sig"][1:]
    return out


def unsigned(params: dict[str, str]) -> dict[str, str]:
    return params | {"format": "json"}


def too_many() -> dict[str, str]:
    params = {"method": "track.scrobble", "api_key": KEY, "sk": SK}
    for i in range(51):
        params |= {f"artist[{i}]": "A", f"track[{i}]": f"T{i}", f"timestamp[{i}]": recent(i)}
    return params


def fifty() -> dict[str, str]:
    params = {"method": "track.scrobble", "api_key": KEY, "sk": SK}
    for i in range(50):
        params |= {f"artist[{i}]": "A", f"track[{i}]": f"T{i}", f"timestamp[{i}]": recent(i)}
    return params


ERROR_CASES: list[tuple[str, dict[str, str], str, int | None]] = [
    ("now playing ok", signed(now_playing()), "POST", None),
    ("scrobble ok", signed(one_scrobble()), "POST", None),
    ("batch of 50 ok", signed(fifty()), "POST", None),
    ("wrong signature", tampered(now_playing()), "POST", 13),
    ("no signature", unsigned(now_playing()), "POST", 13),
    (
        "format sent but not signed",
        now_playing(format="json") | {"api_sig": sign(now_playing(format="json"), SECRET)},
        "POST",
        None,
    ),
    (
        "signature without the secret",
        now_playing()
        | {
            "api_sig": hashlib.md5(
                signature_base(now_playing(), "").encode(), usedforsecurity=False
            ).hexdigest(),
            "format": "json",
        },
        "POST",
        13,
    ),
    ("unknown api key", signed(now_playing(api_key="nope")), "POST", 10),
    ("unknown method", signed(now_playing(method="track.teleport")), "POST", 3),
    ("write over GET", signed(now_playing()), "GET", 3),
    ("bad session key", signed(now_playing(sk="nope")), "POST", 9),
    (
        "now playing without track",
        signed({k: v for k, v in now_playing().items() if k != "track"}),
        "POST",
        6,
    ),
    ("51 scrobbles", signed(too_many()), "POST", 6),
    (
        "index 50",
        signed(one_scrobble(**{"artist[50]": "A", "track[50]": "B", "timestamp[50]": recent()})),
        "POST",
        6,
    ),
    (
        "missing timestamp",
        signed({k: v for k, v in one_scrobble().items() if k != "timestamp[0]"}),
        "POST",
        6,
    ),
    ("timestamp not a number", signed(one_scrobble(**{"timestamp[0]": "yesterday"})), "POST", 6),
]


@pytest.mark.parametrize(
    ("case", "params", "http", "error"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
async def test_method_rules(sb, client, case, params, http, error):
    response = await call(sb, client, params, http)
    body = response.json()
    if error is None:
        assert "error" not in body, body
        assert response.status_code == 200
    else:
        assert body["error"] == error, body
        assert response.status_code >= 400


async def test_json_body_is_not_a_form(sb, client):
    response = await client.post(
        sb.env["LASTFM_API_URL"] + "?format=json", json=signed(now_playing())
    )
    assert response.json()["error"] == 3
    assert sb.lastfm.snapshot()["now_playing"] == {}


async def test_parameters_in_query_string_do_not_count(sb, client):
    response = await client.post(sb.env["LASTFM_API_URL"], params=signed(now_playing()))
    assert "error" in response.json()


async def test_errors_in_xml_body_by_default(sb, client):
    params = tampered(now_playing())
    params.pop("format")
    response = await call(sb, client, params)
    assert response.headers["Content-Type"].startswith("text/xml")
    assert '<lfm status="failed"><error code="13">' in response.text


IGNORED_CASES = [
    ("accepted", {}, 0),
    ("artist filtered", {"artist[0]": "[unknown]"}, 1),
    ("empty track", {"track[0]": " "}, 2),
    ("too old", {"timestamp[0]": str(int(time.time()) - 15 * 86400)}, 3),
    ("in future", {"timestamp[0]": str(int(time.time()) + 86_400)}, 4),
]


@pytest.mark.parametrize(
    ("case", "override", "code"), IGNORED_CASES, ids=[c[0] for c in IGNORED_CASES]
)
async def test_scrobble_ignored_codes(sb, client, case, override, code):
    response = await call(sb, client, signed(one_scrobble(**override)))
    scrobbles = response.json()["scrobbles"]
    # A single scrobble comes back as an object, not a list (as Last.fm does).
    assert scrobbles["scrobble"]["ignoredMessage"]["code"] == str(code)
    assert scrobbles["@attr"] == {"accepted": int(code == 0), "ignored": int(code != 0)}
    assert len(sb.lastfm.snapshot()["scrobbles"]) == int(code == 0)


async def test_daily_limit_is_code_5_per_item(sb, client):
    sb.lastfm.state.daily_limit = 1
    params = one_scrobble(**{"artist[1]": "B", "track[1]": "C", "timestamp[1]": recent(1)})
    body = (await call(sb, client, signed(params))).json()["scrobbles"]
    assert [s["ignoredMessage"]["code"] for s in body["scrobble"]] == ["0", "5"]


def recent_params(**extra: str) -> dict[str, str]:
    return {
        "method": "user.getRecentTracks",
        "api_key": KEY,
        "user": "sandbox",
        "format": "json",
    } | extra


async def test_recent_tracks_paging(sb, client):
    base = int(time.time()) - 100_000
    sb.lastfm.seed(
        "scrobbles", [{"artist": "A", "track": f"T{i}", "timestamp": base + i} for i in range(120)]
    )
    page3 = (await call(sb, client, recent_params(limit="50", page="3"), http="GET")).json()[
        "recenttracks"
    ]
    assert page3["@attr"] == {
        "user": "sandbox",
        "page": "3",
        "perPage": "50",
        "totalPages": "3",
        "total": "120",
    }
    assert [t["name"] for t in page3["track"]][:2] == ["T19", "T18"]
    clamped = (await call(sb, client, recent_params(limit="1000"), http="GET")).json()[
        "recenttracks"
    ]
    assert clamped["@attr"]["perPage"] == "200"
    window = (
        await call(
            sb, client, recent_params(**{"from": str(base + 10), "to": str(base + 19)}), http="GET"
        )
    ).json()
    assert window["recenttracks"]["@attr"]["total"] == "10"


async def test_recent_tracks_now_playing_has_no_date(sb, client):
    await call(sb, client, signed(now_playing()))
    await call(sb, client, signed(one_scrobble()))
    tracks = (await call(sb, client, recent_params(), http="GET")).json()["recenttracks"]["track"]
    assert tracks[0]["@attr"] == {"nowplaying": "true"}
    assert "date" not in tracks[0]
    assert "date" in tracks[1]


async def test_recent_tracks_unknown_user(sb, client):
    response = await call(sb, client, recent_params(user="nobody-here"), http="GET")
    assert response.json()["error"] == 6


async def exchange(sb: Sandbox, client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    params = {"method": "auth.getSession", "api_key": KEY, "token": token}
    response = await call(sb, client, signed(params), http="GET")
    return dict(response.json())


async def test_web_auth_page_approve_redirects_with_token(sb, client):
    auth = sb.env["LASTFM_AUTH_URL"]
    page = await client.get(auth, params={"api_key": KEY, "cb": "http://127.0.0.1:9/cb?x=1"})
    assert page.status_code == 200
    assert 'value="approve"' in page.text
    assert 'value="deny"' in page.text
    decision = await client.post(
        f"{auth}decision",
        data={
            "cb": "http://127.0.0.1:9/cb?x=1",
            "token": "",
            "decision": "approve",
            "sandbox_user": "alice",
        },
    )
    assert decision.status_code == 302
    query = parse_qs(urlsplit(decision.headers["Location"]).query)
    assert query["x"] == ["1"]
    session = await exchange(sb, client, query["token"][0])
    assert session["session"]["name"] == "alice"
    # Tokens are single use.
    assert (await exchange(sb, client, query["token"][0]))["error"] == 15


async def test_web_auth_deny_does_not_call_back(sb, client):
    decision = await client.post(
        f"{sb.env['LASTFM_AUTH_URL']}decision",
        data={"cb": "http://127.0.0.1:9/cb", "decision": "deny"},
    )
    assert decision.status_code == 200
    assert "Location" not in decision.headers


async def test_get_session_token_errors(sb, client):
    assert (await exchange(sb, client, "unknown"))["error"] == 4
    token = (
        await call(sb, client, signed({"method": "auth.getToken", "api_key": KEY}), http="GET")
    ).json()["token"]
    assert (await exchange(sb, client, token))["error"] == 14


async def test_revoked_session_is_error_9(sb, client):
    sb.lastfm.seed("users", [{"name": "bob", "session_key": "bob-sk"}])
    assert "error" not in (await call(sb, client, signed(now_playing(sk="bob-sk")))).json()
    sb.lastfm.revoke_session("bob-sk")
    assert (await call(sb, client, signed(now_playing(sk="bob-sk")))).json()["error"] == 9
