"""Fault injection, in Python and over the admin route: 429, 5xx, hang, slow."""

import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from scrobble_sandbox import Sandbox
from tests.support.sandbox import anilist_query, simkl_activities


def lb(sb: Sandbox, path: str = "/validate-token") -> str:
    return f"{sb.env['LISTENBRAINZ_API_URL']}{path}"


async def test_rate_limit_fault_matches_prefix_and_count(sb, client, token):
    # "/submit-listens" is relative to LISTENBRAINZ_API_URL, which already ends in /1.
    sb.listenbrainz.faults.rate_limit(count=2, retry_after=7, path_prefix="/submit-listens")
    auth = {"Authorization": f"Token {token}"}
    other = await client.get(lb(sb), headers=auth)
    assert other.status_code == 200
    body = {
        "listen_type": "playing_now",
        "payload": [{"track_metadata": {"artist_name": "A", "track_name": "B"}}],
    }
    answers = [
        await client.post(lb(sb, "/submit-listens"), json=body, headers=auth) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert [r.fault for r in sb.listenbrainz.requests("/submit-listens")] == [
        "rate_limit",
        "rate_limit",
        None,
    ]


LB_BODY = {
    "listen_type": "playing_now",
    "payload": [{"track_metadata": {"artist_name": "A", "track_name": "B"}}],
}


async def _lb_submit(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        lb(sb, "/submit-listens"), json=LB_BODY, headers={"Authorization": f"Token {token}"}
    )


async def _lastfm_recent(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    params = {
        "method": "user.getRecentTracks",
        "user": "sandbox",
        "format": "json",
        "api_key": sb.env["LASTFM_API_KEY"],
    }
    return await client.get(sb.env["LASTFM_API_URL"], params=params)


async def _lastfm_auth_page(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(sb.env["LASTFM_AUTH_URL"], params={"api_key": "nope"})


async def _trakt_history(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(
        f"{sb.env['TRAKT_API_URL']}/sync/history",
        headers={
            "trakt-api-key": sb.env["TRAKT_CLIENT_ID"],
            "trakt-api-version": "2",
            "User-Agent": "scrobble-tests/1.0",
            "Authorization": f"Bearer {token}",
        },
    )


async def _anilist_viewer(sb: Sandbox, client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await anilist_query(sb, client, token, "{ Viewer { id name } }")


Call = Callable[[Sandbox, httpx.AsyncClient, str], Awaitable[httpx.Response]]

# (fake, a call, its path relative to the fake's documented base URL, the full server path)
RELATIVE_CASES: list[tuple[str, Call, str, str]] = [
    ("listenbrainz", _lb_submit, "/submit-listens", "/listenbrainz/1/submit-listens"),
    ("lastfm", _lastfm_recent, "/", "/lastfm-api/2.0/"),
    ("lastfm", _lastfm_auth_page, "/", "/lastfm-www/api/auth/"),
    ("trakt", _trakt_history, "/sync/history", "/trakt-api/sync/history"),
    ("simkl", simkl_activities, "/sync/activities", "/simkl-api/sync/activities"),
    ("anilist", _anilist_viewer, "/", "/anilist-graphql"),
]
RELATIVE_IDS = ["listenbrainz", "lastfm-api", "lastfm-auth", "trakt", "simkl", "anilist"]


@pytest.mark.parametrize(("fake", "send", "path", "full"), RELATIVE_CASES, ids=RELATIVE_IDS)
async def test_paths_are_relative_to_the_documented_base_url(
    sb, client, token, fake, send, path, full
):
    await send(sb, client, token)
    [record] = sb.fakes[fake].requests(path)
    assert (record.path, record.full_path) == (path, full)
    # Backwards compatible: the full server path finds the same record.
    assert sb.fakes[fake].requests(full) == [record]
    listed = await client.get(
        f"{sb.base_url}/_sandbox/{fake}/requests", params={"path_prefix": path}
    )
    assert [r["path"] for r in listed.json()] == [path]


@pytest.mark.parametrize("form", ["relative", "full"])
@pytest.mark.parametrize(("fake", "send", "path", "full"), RELATIVE_CASES, ids=RELATIVE_IDS)
async def test_fault_path_prefix_is_relative_to_the_documented_base_url(
    sb, client, token, fake, send, path, full, form
):
    sb.fakes[fake].faults.error(status=502, path_prefix=path if form == "relative" else full)
    faulted = await send(sb, client, token)
    assert faulted.status_code == 502
    assert sb.fakes[fake].faults.pending() == []
    assert (await send(sb, client, token)).status_code != 502


async def test_fault_under_another_path_does_not_fire(sb, client, token):
    sb.listenbrainz.faults.error(status=502, path_prefix="/validate-token")
    assert (await _lb_submit(sb, client, token)).status_code == 200
    assert len(sb.listenbrainz.faults.pending()) == 1


def test_each_surface_base_is_the_exported_url(sb):
    """Recorded paths are relative to exactly the URLs `scrobble sandbox` exports."""
    bases = set()
    for fake in sb.fakes.values():
        for name, base in fake.bases().items():
            surface = sb.surface_for(base.rstrip("/"))
            assert surface is not None
            assert (surface.fake, surface.name, surface.base) == (fake, name, base)
            bases.add(sb.base_url + base.rstrip("/"))
    assert bases == {v.rstrip("/") for k, v in sb.env.items() if k.endswith("_URL")}


FAULT_CALLS: list[tuple[str, Call]] = [
    ("trakt", _trakt_history),
    ("lastfm", _lastfm_recent),
    ("listenbrainz", _lb_submit),
    ("simkl", simkl_activities),
    ("anilist", _anilist_viewer),
]


@pytest.mark.parametrize(("fake", "send"), FAULT_CALLS, ids=[c[0] for c in FAULT_CALLS])
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_error_fault_on_every_fake(sb, client, token, fake, send, status):
    normal = await send(sb, client, token)
    assert normal.status_code == 200, normal.text
    sb.fakes[fake].faults.error(status=status)
    faulted = await send(sb, client, token)
    again = await send(sb, client, token)
    assert faulted.status_code == status
    assert (again.status_code, again.json()) == (normal.status_code, normal.json())
    assert [r.fault for r in sb.fakes[fake].requests()] == [None, "error", None]
    assert [r.status for r in sb.fakes[fake].requests()] == [200, status, 200]


@pytest.mark.parametrize(("fake", "send"), FAULT_CALLS, ids=[c[0] for c in FAULT_CALLS])
async def test_rate_limit_fault_on_every_fake(sb, client, token, fake, send):
    sb.fakes[fake].faults.rate_limit(retry_after=4)
    response = await send(sb, client, token)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "4"
    assert (await send(sb, client, token)).status_code == 200


async def test_slow_fault(sb, client):
    sb.listenbrainz.faults.slow(300)
    started = time.monotonic()
    response = await client.get(lb(sb), params={"token": "x"})
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_hang_fault_outlasts_the_client_timeout(sb, client):
    sb.simkl.faults.hang()
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"{sb.env['SIMKL_API_URL']}/sync/activities", timeout=0.3)
    # The fault was used up: the next call answers (401 without credentials) at once.
    response = await client.get(f"{sb.env['SIMKL_API_URL']}/sync/activities", timeout=2)
    assert response.status_code == 401


async def test_faults_over_http(sb, client):
    admin = f"{sb.base_url}/_sandbox/simkl/faults"
    created = await client.post(
        admin, json={"kind": "error", "status": 502, "count": 1, "path_prefix": "/sync"}
    )
    assert created.status_code == 201
    assert len((await client.get(admin)).json()) == 1
    response = await client.get(f"{sb.env['SIMKL_API_URL']}/sync/activities")
    assert response.status_code == 502
    assert (await client.get(admin)).json() == []
    assert (await client.post(admin, json={"kind": "explode"})).status_code == 400
    await client.post(admin, json={"kind": "rate_limit", "count": 5})
    assert (await client.delete(admin)).status_code == 200
    assert (await client.get(admin)).json() == []


async def test_drop_fault_does_what_was_asked_then_breaks_the_answer_off(sb, client, token):
    sb.listenbrainz.faults.drop(path_prefix="/submit-listens")
    auth = {"Authorization": f"Token {token}"}
    listen = {
        "listen_type": "single",
        "payload": [
            {
                "listened_at": int(time.time()) - 60,
                "track_metadata": {"artist_name": "A", "track_name": "Dropped"},
            }
        ],
    }
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(lb(sb, "/submit-listens"), json=listen, headers=auth)
    # The listen was stored all the same: the client cannot tell whether it was.
    stored = [
        x for x in sb.listenbrainz.state.listens if x.track_metadata["track_name"] == "Dropped"
    ]
    assert len(stored) == 1
    assert [r.fault for r in sb.listenbrainz.requests("/submit-listens")] == ["drop"]
    # Used up: the same listen again is answered (and stored once, as the server dedups).
    again = await client.post(lb(sb, "/submit-listens"), json=listen, headers=auth)
    assert again.status_code == 200
