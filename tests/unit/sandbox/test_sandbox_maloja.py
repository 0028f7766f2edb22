"""Maloja fake: what Maloja 3.2.3 answered when tried by hand (its API key as a token field or
``Authorization: Token``, the body rules of its ListenBrainz API, scrobbles kept one a second,
the import that stops at a listen it has, the list paged by number between days, and the
list bound at the server's start)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scrobble_sandbox import Sandbox
from scrobble_sandbox.maloja.fake import MalojaFake

NOW = int(time.time())
HOUR_AGO = NOW - 3600


def maloja(sb: Sandbox) -> MalojaFake:
    return sb.fake("maloja", MalojaFake)


def listen(at: int = HOUR_AGO, **meta: Any) -> dict[str, Any]:
    return {
        "listened_at": at,
        "track_metadata": {"artist_name": "Björk; Thom Yorke", "track_name": "Scatterheart"} | meta,
    }


def submit(listen_type: str, *listens: Any) -> dict[str, Any]:
    return {"listen_type": listen_type, "payload": list(listens)}


def titles(sb: Sandbox) -> list[str]:
    return [s["track"]["title"] for s in maloja(sb).snapshot()["scrobbles"]]


async def post(
    sb: Sandbox, client: httpx.AsyncClient, token: str, body: Any, path: str = "submit-listens"
) -> httpx.Response:
    return await client.post(
        f"{sb.env['MALOJA_API_URL']}/apis/listenbrainz/1/{path}",
        json=body,
        headers={"Authorization": f"Token {token}"},
    )


UNSPECIFIED = {"code": 500, "error": "Unspecified server error."}
MALFORMED = {"code": 400, "error": "Invalid JSON document submitted."}
OK = {"status": "ok"}
SUBMIT_CASES: list[tuple[str, Any, int, dict[str, Any], list[str]]] = [
    ("single", submit("single", listen()), 200, OK, ["Scatterheart"]),
    (
        "import",
        submit("import", listen(), listen(NOW - 60, track_name="B")),
        200,
        OK,
        ["B", "Scatterheart"],
    ),
    ("playing_now kept nowhere", submit("playing_now", listen()), 200, OK, []),
    ("no listen_type", {"payload": [listen()]}, 400, MALFORMED, []),
    ("no payload", {"listen_type": "single"}, 400, MALFORMED, []),
    ("another listen type", submit("loved", listen()), 500, UNSPECIFIED, []),
    ("no track_metadata", submit("single", {"listened_at": HOUR_AGO}), 400, MALFORMED, []),
    (
        "no artist_name",
        submit("single", {"track_metadata": {"track_name": "x"}}),
        400,
        MALFORMED,
        [],
    ),
    (
        "no track_name",
        submit("single", {"track_metadata": {"artist_name": "x"}}),
        400,
        MALFORMED,
        [],
    ),
    ("empty artist", submit("single", listen(artist_name="")), 500, UNSPECIFIED, []),
    (
        "discarded artist",
        submit("single", listen(artist_name="Unknown Artist")),
        500,
        UNSPECIFIED,
        [],
    ),
    ("payload a string", {"listen_type": "single", "payload": "x"}, 400, MALFORMED, []),
    ("payload empty", submit("single"), 200, OK, []),
    ("payload an empty object", {"listen_type": "single", "payload": {}}, 200, OK, []),
    # A listen Maloja has ends an import there, as a success: the one after it is lost.
    (
        "import after a held listen",
        submit("import", listen(), listen(NOW - 60, track_name="B")),
        200,
        OK,
        ["Scatterheart"],
    ),
    # Another track in a second Maloja has: DuplicateTimestamp, which its API maps to 500.
    (
        "another track in a held second",
        submit("single", listen(track_name="Other")),
        500,
        UNSPECIFIED,
        ["Scatterheart"],
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "answer", "kept"), SUBMIT_CASES, ids=[c[0] for c in SUBMIT_CASES]
)
async def test_submit_listens_rules(
    sb: Sandbox,
    client: httpx.AsyncClient,
    token: str,
    case: str,
    body: Any,
    status: int,
    answer: dict[str, Any],
    kept: list[str],
) -> None:
    if "held" in case:
        assert (await post(sb, client, token, submit("single", listen()))).status_code == 200
    response = await post(sb, client, token, body)
    assert (response.status_code, response.json()) == (status, answer)
    assert titles(sb) == kept


async def test_a_listen_is_kept_as_maloja_keeps_it(
    sb: Sandbox, client: httpx.AsyncClient, token: str
) -> None:
    full = listen(release_name="Selmasongs", additional_info={"duration": 242, "duration_ms": 1})
    await post(sb, client, token, submit("single", full))
    odd = listen(artist_name="AC/DC & Friends", track_name="T") | {"listened_at": "noon"}
    await post(sb, client, token, submit("single", odd))
    kept = maloja(sb).snapshot()["scrobbles"]
    assert kept[1] == {
        "time": HOUR_AGO,
        "track": {
            "artists": ["Björk", "Thom Yorke"],
            "title": "Scatterheart",
            "album": {"artists": ["Björk", "Thom Yorke"], "albumtitle": "Selmasongs"},
            "length": 242,  # seconds in duration; duration_ms is not read
        },
        "duration": None,
        "origin": "client:default",
    }
    # A time that is no number is now; artists split at "/" and "&" (and ";"), never ",".
    assert kept[0]["time"] >= NOW
    assert kept[0]["track"]["artists"] == ["AC", "DC", "Friends"]


async def test_a_body_that_is_no_json_is_a_400_page(
    sb: Sandbox, client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post(
        f"{sb.env['MALOJA_API_URL']}/apis/listenbrainz/1/submit-listens",
        content=b"{not json",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert titles(sb) == []


AUTH_CASES = [
    ("no header", {}, {}, 401, "You need to provide an Authorization header."),
    ("unknown key", {"Authorization": "Token nope"}, {}, 401, "Incorrect Authorization"),
    (
        "bearer",
        {"Authorization": "Bearer {t}"},
        {},
        401,
        "You need to provide an Authorization header.",
    ),
    ("token scheme", {"Authorization": "Token {t}"}, {}, 200, None),
    ("lower-case scheme", {"Authorization": "token {t}"}, {}, 200, None),
    ("token field", {}, {"token": "{t}"}, 200, None),
]


@pytest.mark.parametrize(
    ("case", "headers", "query", "status", "error"), AUTH_CASES, ids=[c[0] for c in AUTH_CASES]
)
@pytest.mark.parametrize("path", ["submit-listens", "validate-token"])
async def test_api_key_auth(
    sb: Sandbox,
    client: httpx.AsyncClient,
    token: str,
    path: str,
    case: str,
    headers: dict[str, str],
    query: dict[str, str],
    status: int,
    error: str | None,
) -> None:
    response = await client.post(
        f"{sb.env['MALOJA_API_URL']}/apis/listenbrainz/1/{path}",
        json=submit("single", listen()),
        headers={k: v.format(t=token) for k, v in headers.items()},
        params={k: v.format(t=token) for k, v in query.items()},
    )
    assert response.status_code == status, response.text
    if error is not None:
        assert response.json() == {"code": status, "error": error}
    elif path == "validate-token":
        assert response.json() == {
            "code": 200,
            "message": "Token valid.",
            "valid": True,
            "user_name": "sandbox",
        }
    assert maloja(sb).requests(f"/apis/listenbrainz/1/{path}")[-1].user == (
        "default" if status == 200 else None
    )


async def test_seeded_keys_and_name(sb: Sandbox, client: httpx.AsyncClient) -> None:
    maloja(sb).seed("keys", [{"key": "another-key", "client": "phone"}])
    maloja(sb).seed("name", [{"name": "Generic Maloja User"}])
    response = await client.get(
        f"{sb.env['MALOJA_API_URL']}/apis/listenbrainz/1/validate-token",
        headers={"Authorization": "Token another-key"},
    )
    assert response.json()["user_name"] == "Generic Maloja User"


async def test_other_methods_and_apis(sb: Sandbox, client: httpx.AsyncClient, token: str) -> None:
    feedback = await post(
        sb, client, token, {"recording_mbid": "x", "score": 1}, "feedback/recording-feedback"
    )
    assert (feedback.status_code, feedback.json()) == (
        200,
        {"code": 200, "error": "Invalid Method"},
    )
    other = await client.get(f"{sb.env['MALOJA_API_URL']}/apis/spotify/1/anything")
    assert (other.status_code, other.json()) == (404, {"error": "Invalid API"})
    info = (await client.get(f"{sb.env['MALOJA_API_URL']}/apis/mlj_1/serverinfo")).json()
    assert (info["name"], info["versionstring"]) == ("sandbox", "3.2.3")


# --- the native API's list --------------------------------------------------------------------


def day(moment: datetime) -> str:
    return f"{moment.year}/{moment.month}/{moment.day}"


async def scrobbles(sb: Sandbox, client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get(f"{sb.env['MALOJA_API_URL']}/apis/mlj_1/scrobbles", params=params)


async def test_the_list_is_paged_by_number_newest_first(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    maloja(sb).seed(
        "scrobbles",
        [{"time": HOUR_AGO - 60 * n, "artist": "A", "title": f"T{n}"} for n in range(7)],
    )
    seen: list[str] = []
    pages = []
    for page in range(3):
        body = (await scrobbles(sb, client, page=page, perpage=3)).json()
        seen += [s["track"]["title"] for s in body["list"]]
        pages.append(body["pagination"])
    assert seen == [f"T{n}" for n in range(7)]
    assert [p["next_page"] is not None for p in pages] == [True, True, False]
    assert [p["prev_page"] is not None for p in pages] == [False, True, True]
    assert pages[0]["next_page"] == "/apis/mlj_1/scrobbles?page=1&perpage=3"
    unpaged = (await scrobbles(sb, client)).json()
    assert (len(unpaged["list"]), unpaged["pagination"]["perpage"]) == (7, None)


async def test_the_list_between_days(sb: Sandbox, client: httpx.AsyncClient) -> None:
    base = datetime(2025, 6, 15, 12, tzinfo=UTC)
    maloja(sb).seed(
        "scrobbles",
        [
            {"time": int((base + timedelta(days=d)).timestamp()), "artist": "A", "title": f"D{d}"}
            for d in (-1, 0, 1)
        ],
    )
    one_day = (await scrobbles(sb, client, **{"from": day(base), "to": day(base)})).json()
    assert [s["track"]["title"] for s in one_day["list"]] == ["D0"]
    named = {"since": "2025/6", "until": "2025/6/15"}  # other names, a month
    assert [s["track"]["title"] for s in (await scrobbles(sb, client, **named)).json()["list"]] == [
        "D0",
        "D-1",
    ]


async def test_without_from_the_list_starts_at_the_servers_start(
    sb: Sandbox, client: httpx.AsyncClient, token: str
) -> None:
    """Sent after the server started, for a time before it: held, but left out of a list
    that names no first day (until Maloja restarts)."""
    await post(sb, client, token, submit("single", listen(HOUR_AGO)))
    assert (await scrobbles(sb, client)).json()["list"] == []
    named = (await scrobbles(sb, client, **{"from": "1970/1/1"})).json()["list"]
    assert [s["time"] for s in named] == [HOUR_AGO]
    maloja(sb).restart()
    assert len((await scrobbles(sb, client)).json()["list"]) == 1


async def test_without_to_the_list_ends_today(sb: Sandbox, client: httpx.AsyncClient) -> None:
    later = int((datetime.now(UTC) + timedelta(days=2)).timestamp())
    maloja(sb).seed("scrobbles", [{"time": later, "artist": "A", "title": "Soon"}])
    assert (await scrobbles(sb, client)).json()["list"] == []
    assert len((await scrobbles(sb, client, to="2100")).json()["list"]) == 1


@pytest.mark.parametrize("params", [{"page": "x"}, {"from": "garbage"}, {"to": ""}])
async def test_what_the_list_cannot_read_is_a_500(
    sb: Sandbox, client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await scrobbles(sb, client, **params)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "unknown_error"


async def test_told_to_fail(sb: Sandbox, client: httpx.AsyncClient, token: str) -> None:
    fake = maloja(sb)
    fake.faults.error(503, count=1, path_prefix="/apis/listenbrainz/1/submit-listens")
    fake.faults.rate_limit(count=1, retry_after=5)
    failed = await post(sb, client, token, submit("single", listen()))
    assert (failed.status_code, failed.json()) == (
        503,
        {"code": 503, "error": "Unspecified server error."},
    )
    limited = await scrobbles(sb, client)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "5")
    assert (await post(sb, client, token, submit("single", listen()))).status_code == 200
