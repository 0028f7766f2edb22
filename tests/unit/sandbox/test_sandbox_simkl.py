"""Simkl fake: app id and token, scrobble semantics and 409, sync bodies, activities and
all-items, code and PIN flows."""

from urllib.parse import parse_qs, urlsplit

import pytest

from scrobble_sandbox import Sandbox

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
        assert response.json()["error"] in ("client_id_failed", "user_token_failed")


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
    assert len(sb.simkl.snapshot()["history"]) == (1 if result == "scrobble" else 0)


async def test_repeat_within_an_hour_is_409(sb, client, token):
    url = f"{sb.env['SIMKL_API_URL']}/scrobble/stop"
    body = {"progress": 90, "movie": MOVIE}
    assert (await client.post(url, json=body, headers=headers(sb, token))).status_code == 201
    again = await client.post(url, json=body, headers=headers(sb, token))
    assert again.status_code == 409
    assert set(again.json()) == {"watched_at", "expires_at"}


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


@pytest.mark.parametrize(("rating", "status"), [(8, 201), (0, 400), (11, 400), ("8", 400)])
async def test_sync_ratings(sb, client, token, rating, status):
    body = {"movies": [MOVIE | {"rating": rating}]}
    response = await client.post(
        f"{sb.env['SIMKL_API_URL']}/sync/ratings", json=body, headers=headers(sb, token)
    )
    assert response.status_code == status


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
