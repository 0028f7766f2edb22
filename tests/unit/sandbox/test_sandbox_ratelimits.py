"""Rate limits: published defaults, exact behaviour at and above the limit, real headers."""

import asyncio
import json

import httpx
import pytest

from scrobble_sandbox import Limit, Sandbox
from tests.support.sandbox import anilist_query, lastfm_write, simkl_activities


def trakt_headers(sb: Sandbox, token: str) -> dict[str, str]:
    return {
        "trakt-api-key": sb.env["TRAKT_CLIENT_ID"],
        "trakt-api-version": "2",
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
    }


async def trakt_write(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    body = {"progress": 10, "movie": {"title": "Heat", "year": 1995, "ids": {"imdb": "tt0113277"}}}
    return await client.post(
        f"{sb.env['TRAKT_API_URL']}/scrobble/start", json=body, headers=trakt_headers(sb, token)
    )


async def trakt_get(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(
        f"{sb.env['TRAKT_API_URL']}/sync/history", headers=trakt_headers(sb, token)
    )


async def simkl_post(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        f"{sb.env['SIMKL_API_URL']}/sync/history",
        json={"movies": []},
        headers={"simkl-api-key": sb.env["SIMKL_CLIENT_ID"], "Authorization": f"Bearer {token}"},
    )


async def lb_get(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(
        f"{sb.env['LISTENBRAINZ_API_URL']}/validate-token",
        headers={"Authorization": f"Token {token}"},
    )


async def anilist_post(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await anilist_query(sb, client, token, "{ Viewer { id } }")


async def lastfm_post(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await lastfm_write(sb, client, "track.love", token, artist="A", track="B")


def check_trakt(r: httpx.Response) -> None:
    assert int(r.headers["Retry-After"]) >= 1
    info = json.loads(r.headers["X-Ratelimit"])
    assert {"name", "period", "limit", "remaining", "until"} <= set(info)
    assert info["remaining"] == 0


def check_simkl(r: httpx.Response) -> None:
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["code"] == 429


def check_lb(r: httpx.Response) -> None:
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert int(r.headers["X-RateLimit-Reset-In"]) >= 1
    assert r.json() == {"code": 429, "error": r.json()["error"]}
    assert "rate limit" in r.json()["error"]


def check_anilist(r: httpx.Response) -> None:
    assert int(r.headers["Retry-After"]) >= 1
    assert int(r.headers["X-RateLimit-Reset"]) > 0
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.json()["errors"][0]["status"] == 429


def check_lastfm(r: httpx.Response) -> None:
    assert r.json()["error"] == 29


LIMIT_CASES = [
    ("trakt", "write", trakt_write, check_trakt),
    ("trakt", "get", trakt_get, check_trakt),
    ("simkl", "post", simkl_post, check_simkl),
    ("simkl", "get", simkl_activities, check_simkl),
    ("listenbrainz", "per_token", lb_get, check_lb),
    ("anilist", "per_minute", anilist_post, check_anilist),
    ("lastfm", "per_key", lastfm_post, check_lastfm),
]


@pytest.mark.parametrize(
    ("fake", "name", "send", "check"), LIMIT_CASES, ids=[f"{c[0]}-{c[1]}" for c in LIMIT_CASES]
)
async def test_burst_above_limit_is_429_and_at_limit_passes(
    sb, client, token, fake, name, send, check
):
    limits = sb.fakes[fake].rate_limits
    limits.enabled = True
    setattr(limits, name, Limit(3, 60.0))
    answers = [await send(sb, client, token) for _ in range(4)]
    assert [r.status_code for r in answers[:3]] == [answers[0].status_code] * 3
    assert answers[0].status_code < 400, answers[0].text
    assert answers[3].status_code == 429, answers[3].text
    check(answers[3])
    recorded = sb.fakes[fake].requests()
    assert recorded[-1].extra["rate_limited"] == name


async def test_listenbrainz_headers_count_down(sb, client, token):
    sb.listenbrainz.rate_limits.enabled = True
    sb.listenbrainz.rate_limits.update({"per_token": {"limit": 3, "window": 60}})
    remaining = [
        (await lb_get(sb, client, token)).headers["X-RateLimit-Remaining"] for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]


async def test_anilist_headers_on_every_answer(sb, client, token):
    sb.anilist.rate_limits.enabled = True
    response = await anilist_post(sb, client, token)
    assert response.headers["X-RateLimit-Limit"] == "90"
    assert response.headers["X-RateLimit-Remaining"] == "89"


async def test_window_slides(sb, client, token):
    sb.simkl.rate_limits.enabled = True
    sb.simkl.rate_limits.update({"get": {"limit": 2, "window": 0.3}})
    assert [(await simkl_activities(sb, client, token)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    await asyncio.sleep(0.35)  # let the window pass: the thing under test is time itself
    assert (await simkl_activities(sb, client, token)).status_code == 200


async def test_trakt_default_write_limit_one_per_second(sb, client, token):
    sb.reset()  # published defaults, limits on
    assert sb.trakt.rate_limits.enabled
    first = await trakt_write(sb, client, token)
    second = await trakt_write(sb, client, token)
    assert first.status_code == 201
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"
    info = json.loads(second.headers["X-Ratelimit"])
    assert (info["name"], info["period"], info["limit"]) == ("AUTHED_API_POST_LIMIT", 1, 1)


def test_published_defaults(sb):
    sb.reset()
    assert sb.trakt.rate_limits.to_json() == {
        "enabled": True,
        "write": {"limit": 1, "window": 1.0},
        "get": {"limit": 500, "window": 300.0},
    }
    assert sb.simkl.rate_limits.to_json() == {
        "enabled": True,
        "post": {"limit": 1, "window": 1.0},
        "get": {"limit": 10, "window": 1.0},
    }
    assert sb.anilist.rate_limits.to_json() == {
        "enabled": True,
        "per_minute": {"limit": 90, "window": 60.0},
    }
    assert sb.lastfm.rate_limits.to_json() == {
        "enabled": True,
        "per_key": {"limit": 5, "window": 1.0},
    }
    assert sb.listenbrainz.rate_limits.to_json()["enabled"] is True


async def test_limits_adjustable_over_http(sb, client, token):
    url = f"{sb.base_url}/_sandbox/anilist/rate_limits"
    response = await client.put(
        url, json={"enabled": True, "per_minute": {"limit": 1, "window": 60}}
    )
    assert response.json()["per_minute"] == {"limit": 1, "window": 60.0}
    assert (await anilist_post(sb, client, token)).status_code == 200
    assert (await anilist_post(sb, client, token)).status_code == 429
    assert (await client.put(url, json={"nonsense": 1})).status_code == 400
    await client.put(url, json={"enabled": False})
    assert (await anilist_post(sb, client, token)).status_code == 200


async def test_simkl_limits_hold_per_client_id_across_users(sb, client, token):
    """1 POST/s per token AND per client id: a second user's POST within the second, with
    the same app id, is refused although that user's own token has not posted."""
    sb.simkl.seed("users", [{"name": "other", "token": "other-simkl-token"}])
    sb.simkl.rate_limits.enabled = True  # the published 1 POST/s, 10 GET/s
    first = await simkl_post(sb, client, token)
    second = await simkl_post(sb, client, "other-simkl-token")
    assert first.status_code == 201, first.text
    assert second.status_code == 429, second.text
    check_simkl(second)
    assert sb.simkl.requests()[-1].extra["rate_limited"] == "post"
    assert sb.simkl.requests()[-1].user is None  # refused before the handler ran


async def test_simkl_token_limit_holds_under_either_app_id_form(sb, client, token):
    """The token's own bucket counts too: GETs with the app id in the header, then in the
    query, share the token's 10/s."""
    sb.simkl.rate_limits.enabled = True
    sb.simkl.rate_limits.update({"get": {"limit": 2, "window": 60}})
    api, auth = sb.env["SIMKL_API_URL"], {"Authorization": f"Bearer {token}"}
    header = auth | {"simkl-api-key": sb.env["SIMKL_CLIENT_ID"]}
    query = {"client_id": sb.env["SIMKL_CLIENT_ID"]}
    answers = [
        await client.get(f"{api}/sync/activities", headers=header),
        await client.get(f"{api}/sync/activities", headers=auth, params=query),
        await client.get(f"{api}/sync/activities", headers=auth, params=query),
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]


async def test_simkl_oauth_calls_do_not_use_up_the_app_budget(sb, client, token):
    sb.simkl.rate_limits.enabled = True
    api, cid = sb.env["SIMKL_API_URL"], sb.env["SIMKL_CLIENT_ID"]
    exchange = await client.post(f"{api}/oauth/token", json={"client_id": cid, "code": "x"})
    assert exchange.status_code in (400, 401)
    assert (await simkl_post(sb, client, token)).status_code == 201
