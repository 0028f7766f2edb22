"""Fault injection, in Python and over the admin route: 429, 5xx, hang, slow."""

import time

import httpx
import pytest

from scrobble_sandbox import Sandbox


def lb(sb: Sandbox, path: str = "/validate-token") -> str:
    return f"{sb.env['LISTENBRAINZ_API_URL']}{path}"


async def test_rate_limit_fault_matches_prefix_and_count(sb, client, token):
    sb.listenbrainz.faults.rate_limit(count=2, retry_after=7, path_prefix="/1/submit-listens")
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
    assert [r.fault for r in sb.listenbrainz.requests("/1/submit-listens")] == [
        "rate_limit",
        "rate_limit",
        None,
    ]


FAKE_CALLS = [
    ("trakt", "TRAKT_API_URL", "/sync/history"),
    (
        "lastfm",
        "LASTFM_API_URL",
        "?method=user.getRecentTracks&user=sandbox&format=json&api_key=sandbox-lastfm-api-key",
    ),
    ("listenbrainz", "LISTENBRAINZ_API_URL", "/validate-token?token=x"),
    ("simkl", "SIMKL_API_URL", "/sync/activities"),
    ("anilist", "ANILIST_API_URL", ""),
]


@pytest.mark.parametrize(("fake", "env", "path"), FAKE_CALLS, ids=[c[0] for c in FAKE_CALLS])
@pytest.mark.parametrize("status", [500, 503])
async def test_error_fault_on_every_fake(sb, client, fake, env, path, status):
    sb.fakes[fake].faults.error(status=status)
    response = await client.get(sb.env[env] + path)
    assert response.status_code == status
    again = await client.get(sb.env[env] + path)
    assert again.status_code != status


@pytest.mark.parametrize(("fake", "env", "path"), FAKE_CALLS, ids=[c[0] for c in FAKE_CALLS])
async def test_rate_limit_fault_on_every_fake(sb, client, fake, env, path):
    sb.fakes[fake].faults.rate_limit(retry_after=4)
    response = await client.get(sb.env[env] + path)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "4"


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
