"""Inspection, seeding, reset, env and the OAuth pages a browser completes."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from scrobble_shared.trackers.registry import TRACKERS
from tests.support.sandbox import lastfm_write


async def test_requests_are_recorded_with_secrets_redacted(sb, client, token):
    await lastfm_write(sb, client, "track.updateNowPlaying", token, artist="Björk", track="Jóga")
    await client.post(
        f"{sb.env['TRAKT_API_URL']}/sync/history",
        json={"movies": []},
        headers={
            "trakt-api-key": sb.env["TRAKT_CLIENT_ID"],
            "trakt-api-version": "2",
            "Authorization": f"Bearer {token}",
        },
    )
    [lastfm] = sb.lastfm.requests()
    assert lastfm.method == "POST"
    # Relative to LASTFM_API_URL (which ends in /2.0/); the server path is kept too.
    assert lastfm.path == "/"
    assert lastfm.full_path == "/lastfm-api/2.0/"
    assert lastfm.body["artist"] == "Björk"
    assert lastfm.body["api_key"] == lastfm.body["sk"] == lastfm.body["api_sig"] == "[REDACTED]"
    assert lastfm.user == "sandbox"
    assert lastfm.status == 200
    [trakt] = sb.trakt.requests("/sync")
    assert trakt.headers["authorization"] == "Bearer [REDACTED]"
    assert trakt.headers["trakt-api-key"] == "[REDACTED]"
    for fake in ("lastfm", "trakt"):
        text = (await client.get(f"{sb.base_url}/_sandbox/{fake}/requests")).text
        assert token not in text
        assert sb.env["LASTFM_API_KEY"] not in text
        assert sb.env["TRAKT_CLIENT_ID"] not in text
    filtered = (
        await client.get(
            f"{sb.base_url}/_sandbox/trakt/requests", params={"path_prefix": "/scrobble"}
        )
    ).json()
    assert filtered == []


async def test_state_over_http_and_reset(sb, client, token):
    await client.post(
        f"{sb.env['LISTENBRAINZ_API_URL']}/submit-listens",
        json={
            "listen_type": "single",
            "payload": [
                {
                    "listened_at": 1_700_000_000,
                    "track_metadata": {"artist_name": "A", "track_name": "B"},
                }
            ],
        },
        headers={"Authorization": f"Token {token}"},
    )
    state = (await client.get(f"{sb.base_url}/_sandbox/listenbrainz/state")).json()
    assert state["listens"][0]["track_metadata"] == {"artist_name": "A", "track_name": "B"}
    assert (await client.post(f"{sb.base_url}/_sandbox/reset")).status_code == 200
    assert (await client.get(f"{sb.base_url}/_sandbox/listenbrainz/state")).json()["listens"] == []
    assert sb.listenbrainz.requests() == []


async def test_seed_ten_thousand_over_http(sb, client, token):
    items = [
        {
            "type": "episode",
            "watched_at": "2024-05-01T12:00:00Z",
            "show": {"title": "S", "ids": {"trakt": 1}},
            "episode": {"season": 1 + i // 100, "number": 1 + i % 100},
        }
        for i in range(10_000)
    ]
    response = await client.post(
        f"{sb.base_url}/_sandbox/trakt/seed", json={"kind": "history", "items": items}
    )
    assert response.json() == {"seeded": 10_000}
    page = await client.get(
        f"{sb.env['TRAKT_API_URL']}/sync/history/episodes",
        params={"limit": 100},
        headers={
            "trakt-api-key": sb.env["TRAKT_CLIENT_ID"],
            "trakt-api-version": "2",
            "Authorization": f"Bearer {token}",
        },
    )
    assert page.headers["X-Pagination-Item-Count"] == "10000"
    assert page.headers["X-Pagination-Page-Count"] == "100"
    bad = await client.post(
        f"{sb.base_url}/_sandbox/trakt/seed", json={"kind": "planets", "items": []}
    )
    assert bad.status_code == 400


async def test_env_actions_and_unknown_fake(sb, client):
    assert (await client.get(f"{sb.base_url}/_sandbox/env")).json() == sb.env
    assert (await client.get(f"{sb.base_url}/_sandbox/myspace/state")).status_code == 404
    sb.trakt.seed("users", [{"name": "zed", "token": "zed-token"}])
    expired = await client.post(
        f"{sb.base_url}/_sandbox/trakt/actions/expire_token", json={"token": "zed-token"}
    )
    assert expired.json() == {"ok": True}
    assert sb.trakt.state.access.user_for("zed-token") is None


def test_env_shapes(sb):
    env = sb.env
    assert env["LASTFM_API_URL"].endswith("/2.0/")
    assert env["LISTENBRAINZ_API_URL"].endswith("/1")
    # What each tracker of the registry reads to reach its fake: its URLs and its app's
    # credentials; and the token every fake takes.
    names = {"SANDBOX_TOKEN"}
    for spec in (t.settings for t in TRACKERS):
        names.add(f"{spec.prefix}_API_URL")
        if spec.auth_url is not None:
            names.add(f"{spec.prefix}_AUTH_URL")
        names.update(spec.app or ())
    assert set(env) == names
    assert all(env[n].startswith("http://127.0.0.1:") for n in names if n.endswith("_URL"))


PAGES = [
    ("trakt", "TRAKT_AUTH_URL", "/oauth/authorize", "TRAKT_CLIENT_ID"),
    ("simkl", "SIMKL_AUTH_URL", "/oauth/authorize", "SIMKL_CLIENT_ID"),
    ("anilist", "ANILIST_AUTH_URL", "/authorize", "ANILIST_CLIENT_ID"),
]


@pytest.mark.parametrize(("fake", "env", "path", "client_env"), PAGES, ids=[p[0] for p in PAGES])
@pytest.mark.parametrize("decision", ["approve", "deny"])
async def test_authorize_page_a_browser_completes(
    sb, client, fake, env, path, client_env, decision
):
    params = {
        "response_type": "code",
        "client_id": sb.env[client_env],
        "redirect_uri": "http://127.0.0.1:9/cb",
        "state": "st8",
    }
    page = await client.get(sb.env[env] + path, params=params)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    form = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert form is not None, page.text
    action = form.group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert 'id="approve"' in page.text
    assert 'id="deny"' in page.text
    answer = await client.post(action, data=fields | {"decision": decision})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:9/cb"
    assert query["state"] == ["st8"]
    if decision == "approve":
        assert query["code"][0]
    else:
        assert query["error"] == ["access_denied"]


async def test_auto_approve_over_http(sb, client):
    await client.put(f"{sb.base_url}/_sandbox/auto_approve", json={"enabled": True})
    assert sb.auto_approve
    page = await client.get(
        sb.env["LASTFM_AUTH_URL"],
        params={"api_key": sb.env["LASTFM_API_KEY"], "cb": "http://127.0.0.1:9/cb"},
    )
    assert page.status_code == 302
    assert "token=" in page.headers["Location"]
    bad_key = await client.get(
        sb.env["LASTFM_AUTH_URL"], params={"api_key": "nope", "cb": "http://127.0.0.1:9/cb"}
    )
    assert bad_key.status_code == 400


def test_records_are_json(sb):
    assert json.dumps(sb.state())
