"""Simkl fake: app id and token, scrobble semantics and 409, sync bodies, activities and
all-items, code and PIN flows."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from scrobble_sandbox import Sandbox
from scrobble_sandbox.core.clock import parse_iso
from scrobble_sandbox.core.pkce import s256

MOVIE = {"title": "Heat", "year": 1995, "ids": {"imdb": "tt0113277"}}
SHOW = {"title": "The Wire", "ids": {"simkl": 17465}}
ANIME = {"title": "Cowboy Bebop", "ids": {"mal": 1}}


def headers(sb: Sandbox, token: str | None, **override: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "simkl-api-key": sb.env["SIMKL_CLIENT_ID"],
        "Authorization": f"Bearer {token}" if token else None,
    }
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def assert_simkl_error(response: httpx.Response, status: int, error: str | None = None) -> None:
    """Simkl errors are `{error, code, message}` with code = the HTTP status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code", "message"}, body
    assert body["code"] == status
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["message"], str)
    assert body["message"]
    if error is not None:
        assert body["error"] == error


AUTH_CASES = [
    ("header app id", {}, {}, 201),
    ("query app id", {"simkl-api-key": None}, {"client_id": "sandbox-simkl-client-id"}, 201),
    ("no app id", {"simkl-api-key": None}, {}, 401),
    ("wrong app id", {"simkl-api-key": "nope"}, {}, 401),
    ("no bearer", {"Authorization": None}, {}, 401),
    ("bad bearer", {"Authorization": "Bearer nope"}, {}, 401),
]


@pytest.mark.parametrize(
    ("case", "override", "query", "status"), AUTH_CASES, ids=[c[0] for c in AUTH_CASES]
)
async def test_app_id_and_token(sb, client, token, case, override, query, status):
    response = await client.post(
        f"{sb.env['SIMKL_API_URL']}/scrobble/start",
        params=query,
        json={"progress": 3, "movie": MOVIE},
        headers=headers(sb, token, **override),
    )
    assert response.status_code == status, response.text
    if status == 401:
        expected = "user_token_failed" if "bearer" in case else "client_id_failed"
        assert_simkl_error(response, 401, expected)


SCROBBLE_CASES = [
    ("start", "start", {"progress": 0, "movie": MOVIE}, 201, "start"),
    ("pause", "pause", {"progress": 30, "movie": MOVIE}, 201, "pause"),
    ("stop watched", "stop", {"progress": 80, "movie": MOVIE}, 201, "scrobble"),
    ("stop early is pause", "stop", {"progress": 50, "movie": MOVIE}, 201, "pause"),
    (
        "show episode",
        "stop",
        {"progress": 95, "show": SHOW, "episode": {"season": 1, "number": 3}},
        201,
        "scrobble",
    ),
    (
        "anime episode",
        "stop",
        {"progress": 95, "anime": ANIME, "episode": {"number": 5}},
        201,
        "scrobble",
    ),
    ("show without episode", "stop", {"progress": 95, "show": SHOW}, 400, None),
    ("progress 120", "start", {"progress": 120, "movie": MOVIE}, 400, None),
    ("no item", "start", {"progress": 10}, 400, None),
    ("unidentifiable", "stop", {"progress": 90, "movie": {"title": "?"}}, 404, None),
]


@pytest.mark.parametrize(
    ("case", "action", "body", "status", "result"),
    SCROBBLE_CASES,
    ids=[c[0] for c in SCROBBLE_CASES],
)
async def test_scrobble(sb, client, token, case, action, body, status, result):
    response = await client.post(
        f"{sb.env['SIMKL_API_URL']}/scrobble/{action}", json=body, headers=headers(sb, token)
    )
    assert response.status_code == status, response.text
    if result:
        assert response.json()["action"] == result
    elif status == 404:
        assert_simkl_error(response, 404, "id_err")
    else:
        assert_simkl_error(response, status)
    assert len(sb.simkl.snapshot()["history"]) == (1 if result == "scrobble" else 0)


async def test_repeat_within_an_hour_is_409(sb, client, token):
    url = f"{sb.env['SIMKL_API_URL']}/scrobble/stop"
    body = {"progress": 90, "movie": MOVIE}
    assert (await client.post(url, json=body, headers=headers(sb, token))).status_code == 201
    again = await client.post(url, json=body, headers=headers(sb, token))
    assert again.status_code == 409
    assert set(again.json()) == {"watched_at", "expires_at"}
    watched_at, expires_at = (parse_iso(again.json()[k]) for k in ("watched_at", "expires_at"))
    assert expires_at > watched_at
    assert expires_at - watched_at == pytest.approx(3600, abs=0.01)


MOVIE_IDS = {"title": "Heat", "year": 1995, "ids": {"imdb": "tt0113277", "tmdb": 949}}
EPISODE = {"season": 1, "number": 3}
REPEAT_CASES: list[tuple[str, list[dict[str, Any]], list[int]]] = [
    (
        "movie, then tmdb only",
        [{"movie": MOVIE_IDS}, {"movie": {"ids": {"tmdb": 949}}}],
        [201, 409],
    ),
    (
        "movie, then title + year",
        [{"movie": MOVIE_IDS}, {"movie": {"title": "Heat", "year": 1995}}],
        [201, 409],
    ),
    ("another movie", [{"movie": MOVIE_IDS}, {"movie": {"ids": {"tmdb": 950}}}], [201, 201]),
    (
        "show, then by other ids",
        [
            {"show": SHOW | {"ids": {"simkl": 17465, "tvdb": 79126}}, "episode": EPISODE},
            {"show": {"ids": {"tvdb": 79126}}, "episode": EPISODE},
        ],
        [201, 409],
    ),
    (
        "anime, then by title + year",
        [
            {"anime": ANIME | {"year": 1998}, "episode": {"number": 5}},
            {"anime": {"title": "Cowboy Bebop", "year": 1998}, "episode": {"number": 5}},
        ],
        [201, 409],
    ),
    (
        "next episode",
        [{"show": SHOW, "episode": EPISODE}, {"show": SHOW, "episode": {"season": 1, "number": 4}}],
        [201, 201],
    ),
]


@pytest.mark.parametrize(
    ("case", "items", "statuses"), REPEAT_CASES, ids=[c[0] for c in REPEAT_CASES]
)
async def test_repeat_is_409_whatever_ids_name_the_item(sb, client, token, case, items, statuses):
    url = f"{sb.env['SIMKL_API_URL']}/scrobble/stop"
    answers = [
        await client.post(url, json={"progress": 90} | item, headers=headers(sb, token))
        for item in items
    ]
    assert [a.status_code for a in answers] == statuses, [a.text for a in answers]
    assert len(sb.simkl.snapshot()["history"]) == statuses.count(201)


async def test_one_movie_under_two_ids_is_one_library_item(sb, client, token):
    api = sb.env["SIMKL_API_URL"]
    body = {"movies": [MOVIE_IDS, {"ids": {"tmdb": 949}}]}
    await client.post(f"{api}/sync/history", json=body, headers=headers(sb, token))
    await client.post(
        f"{api}/sync/ratings",
        json={"movies": [{"ids": {"imdb": "tt0113277"}, "rating": 9}]},
        headers=headers(sb, token),
    )
    items = (await client.get(f"{api}/sync/all-items/movies", headers=headers(sb, token))).json()
    [movie] = items["movies"]
    assert movie["user_rating"] == 9


HISTORY_CASES = [
    (
        "movie",
        {"movies": [MOVIE | {"watched_at": "2026-01-01T10:00:00Z"}]},
        201,
        {"movies": 1, "shows": 0, "episodes": 0},
    ),
    (
        "show seasons",
        {
            "shows": [
                SHOW | {"seasons": [{"number": 2, "episodes": [{"number": 1}, {"number": 2}]}]}
            ]
        },
        201,
        {"movies": 0, "shows": 1, "episodes": 2},
    ),
    (
        "anime episodes",
        {"anime": [ANIME | {"episodes": [{"number": 1}]}]},
        201,
        {"movies": 0, "shows": 1, "episodes": 1},
    ),
    ("bad date", {"movies": [MOVIE | {"watched_at": "soon"}]}, 400, None),
    ("not json list", {"movies": "Heat"}, 400, None),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "added"), HISTORY_CASES, ids=[c[0] for c in HISTORY_CASES]
)
async def test_sync_history(sb, client, token, case, body, status, added):
    response = await client.post(
        f"{sb.env['SIMKL_API_URL']}/sync/history", json=body, headers=headers(sb, token)
    )
    assert response.status_code == status, response.text
    if added:
        assert response.json()["added"] == added
    else:
        assert_simkl_error(response, 400, "bad_request")


@pytest.mark.parametrize(("rating", "status"), [(8, 201), (0, 400), (11, 400), ("8", 400)])
async def test_sync_ratings(sb, client, token, rating, status):
    body = {"movies": [MOVIE | {"rating": rating}]}
    response = await client.post(
        f"{sb.env['SIMKL_API_URL']}/sync/ratings", json=body, headers=headers(sb, token)
    )
    assert response.status_code == status
    if status == 400:
        assert_simkl_error(response, 400, "bad_request")


async def test_activities_then_all_items_with_date_from(sb, client, token):
    api = sb.env["SIMKL_API_URL"]
    empty = await client.get(
        f"{api}/sync/all-items/movies",
        params={"date_from": "2000-01-01T00:00:00Z"},
        headers=headers(sb, token),
    )
    assert empty.status_code == 200
    assert empty.text == "null"
    sb.simkl.state.created_at -= 10  # activities are in whole seconds: make the change visible
    before = (await client.get(f"{api}/sync/activities", headers=headers(sb, token))).json()
    await client.post(f"{api}/sync/history", json={"movies": [MOVIE]}, headers=headers(sb, token))
    after = (await client.get(f"{api}/sync/activities", headers=headers(sb, token))).json()
    assert after["movies"]["completed"] > before["movies"]["completed"]
    assert after["all"] >= after["movies"]["all"]
    items = (
        await client.get(
            f"{api}/sync/all-items/movies",
            params={"date_from": before["all"]},
            headers=headers(sb, token),
        )
    ).json()
    assert items["movies"][0]["movie"]["ids"] == MOVIE["ids"]
    assert sb.simkl.snapshot()["full_syncs"] == 0
    await client.get(f"{api}/sync/all-items/movies", headers=headers(sb, token))
    assert sb.simkl.snapshot()["full_syncs"] == 1


async def test_code_flow(sb, client):
    sb.simkl.auto_approve = True
    page = await client.get(
        f"{sb.env['SIMKL_AUTH_URL']}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": sb.env["SIMKL_CLIENT_ID"],
            "redirect_uri": "http://127.0.0.1:9/cb",
            "state": "s1",
        },
    )
    query = parse_qs(urlsplit(page.headers["Location"]).query)
    assert query["state"] == ["s1"]
    body = {
        "code": query["code"][0],
        "client_id": sb.env["SIMKL_CLIENT_ID"],
        "client_secret": sb.env["SIMKL_CLIENT_SECRET"],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "grant_type": "authorization_code",
    }
    tokens = await client.post(f"{sb.env['SIMKL_API_URL']}/oauth/token", json=body)
    assert tokens.status_code == 200
    assert set(tokens.json()) == {"access_token", "token_type", "scope"}
    assert (
        await client.post(f"{sb.env['SIMKL_API_URL']}/oauth/token", json=body)
    ).status_code == 400
    wrong = body | {"client_secret": "x"}
    assert (
        await client.post(f"{sb.env['SIMKL_API_URL']}/oauth/token", json=wrong)
    ).status_code == 401


# --- PKCE (Simkl's "Public PKCE" flow) -----------------------------------------------------

VERIFIER = "v" * 50


async def simkl_code(sb: Sandbox, client: httpx.AsyncClient, **extra: str) -> str:
    sb.simkl.auto_approve = True
    params = {
        "response_type": "code",
        "client_id": sb.env["SIMKL_CLIENT_ID"],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "state": "s1",
    } | extra
    page = await client.get(f"{sb.env['SIMKL_AUTH_URL']}/oauth/authorize", params=params)
    assert page.status_code == 302, page.text
    return parse_qs(urlsplit(page.headers["Location"]).query)["code"][0]


def simkl_exchange(sb: Sandbox, code: str, **fields: str | None) -> dict[str, str]:
    body: dict[str, str | None] = {
        "code": code,
        "client_id": sb.env["SIMKL_CLIENT_ID"],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "grant_type": "authorization_code",
        **fields,
    }
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("challenge", "method"),
    [(s256(VERIFIER), "S256"), (s256(VERIFIER), None), (VERIFIER, "plain")],
    ids=["S256", "no method is S256", "plain"],
)
async def test_pkce_exchange_takes_the_verifier_instead_of_the_secret(
    sb, client, challenge, method
):
    extra = {"code_challenge": challenge} | ({"code_challenge_method": method} if method else {})
    code = await simkl_code(sb, client, **extra)
    url = f"{sb.env['SIMKL_API_URL']}/oauth/token"

    wrong = await client.post(url, json=simkl_exchange(sb, code, code_verifier="w" * 50))
    right = await client.post(url, json=simkl_exchange(sb, code, code_verifier=VERIFIER))

    assert wrong.status_code == 401
    assert wrong.json() == {"error": "secret_error"}
    assert right.status_code == 200, right.text
    assert sb.simkl.state.tokens.user_for(right.json()["access_token"]) == "sandbox"


async def test_pkce_code_is_not_redeemed_with_the_secret_alone(sb, client):
    code = await simkl_code(sb, client, code_challenge=s256(VERIFIER))
    secret = sb.env["SIMKL_CLIENT_SECRET"]
    response = await client.post(
        f"{sb.env['SIMKL_API_URL']}/oauth/token",
        json=simkl_exchange(sb, code, client_secret=secret),
    )
    assert response.status_code == 401


async def test_the_secret_and_a_verifier_are_mutually_exclusive(sb, client):
    code = await simkl_code(sb, client, code_challenge=s256(VERIFIER))
    body = simkl_exchange(
        sb, code, client_secret=sb.env["SIMKL_CLIENT_SECRET"], code_verifier=VERIFIER
    )
    response = await client.post(f"{sb.env['SIMKL_API_URL']}/oauth/token", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request"}


@pytest.mark.parametrize("method", ["s256", "PLAIN"])
async def test_a_method_in_the_wrong_case_is_silently_ignored(sb, client, method):
    # Simkl documents the names as case-sensitive: the challenge is dropped, so the code
    # is a confidential client's and a verifier alone cannot redeem it.
    code = await simkl_code(sb, client, code_challenge=s256(VERIFIER), code_challenge_method=method)
    url = f"{sb.env['SIMKL_API_URL']}/oauth/token"
    public = await client.post(url, json=simkl_exchange(sb, code, code_verifier=VERIFIER))
    secret = sb.env["SIMKL_CLIENT_SECRET"]
    confidential = await client.post(url, json=simkl_exchange(sb, code, client_secret=secret))
    assert (public.status_code, confidential.status_code) == (401, 200)


async def test_neither_secret_nor_verifier_is_refused(sb, client):
    code = await simkl_code(sb, client)
    response = await client.post(
        f"{sb.env['SIMKL_API_URL']}/oauth/token", json=simkl_exchange(sb, code)
    )
    assert response.status_code == 401


async def test_pin_flow(sb, client):
    sb.simkl.state.pin_interval = 0
    api, cid = sb.env["SIMKL_API_URL"], sb.env["SIMKL_CLIENT_ID"]
    assert (await client.get(f"{api}/oauth/pin")).status_code == 401
    pin = (await client.get(f"{api}/oauth/pin", params={"client_id": cid})).json()
    assert {"user_code", "verification_url", "expires_in", "interval"} <= set(pin)
    pending = (
        await client.get(f"{api}/oauth/pin/{pin['user_code']}", params={"client_id": cid})
    ).json()
    assert pending["result"] == "KO"
    page = await client.post(
        f"{sb.env['SIMKL_AUTH_URL']}/pin/decision",
        data={"user_code": pin["user_code"], "decision": "approve"},
    )
    assert page.status_code == 200
    done = (
        await client.get(f"{api}/oauth/pin/{pin['user_code']}", params={"client_id": cid})
    ).json()
    assert done["result"] == "OK"
    settings = await client.get(f"{api}/users/settings", headers=headers(sb, done["access_token"]))
    assert settings.status_code == 200


async def _pin(sb: Sandbox, client: httpx.AsyncClient) -> dict[str, Any]:
    sb.simkl.state.pin_interval = 0
    pin = await client.get(
        f"{sb.env['SIMKL_API_URL']}/oauth/pin", params={"client_id": sb.env["SIMKL_CLIENT_ID"]}
    )
    data: dict[str, Any] = pin.json()
    return data


async def _pin_poll(sb: Sandbox, client: httpx.AsyncClient, user_code: str) -> dict[str, Any]:
    answer = await client.get(
        f"{sb.env['SIMKL_API_URL']}/oauth/pin/{user_code}",
        params={"client_id": sb.env["SIMKL_CLIENT_ID"]},
    )
    data: dict[str, Any] = answer.json()
    return data


@pytest.mark.parametrize("link", ["verification_url", "with ?code="])
async def test_pin_flow_completed_in_a_browser(sb, client, browser, link):
    pin = await _pin(sb, client)
    code = pin["user_code"]
    prefilled = link != "verification_url"
    page = await client.get(pin["verification_url"], params={"code": code} if prefilled else None)
    form = browser.form(page)
    assert form.inputs["user_code"][:2] == ("text", code if prefilled else "")
    typed = {} if prefilled else {"user_code": code.lower()}
    decided = await browser.submit(page, typed | {"sandbox_user": "pinuser"}, "approve")
    assert decided.status_code == 200, decided.text
    done = await _pin_poll(sb, client, code)
    assert done["result"] == "OK", done
    settings = await client.get(
        f"{sb.env['SIMKL_API_URL']}/users/settings", headers=headers(sb, done["access_token"])
    )
    assert settings.json()["user"]["name"] == "pinuser"


async def test_pin_denied_in_a_browser(sb, client, browser):
    pin = await _pin(sb, client)
    page = await client.get(pin["verification_url"])
    decided = await browser.submit(page, {"user_code": pin["user_code"]}, "deny")
    assert decided.status_code == 200
    assert (await _pin_poll(sb, client, pin["user_code"]))["result"] == "KO"
