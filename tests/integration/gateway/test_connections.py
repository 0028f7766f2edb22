"""The caller's connections: listing, settings, disconnecting; another user's connection
is not found, exactly as a missing one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.gateway.conftest import Gateway

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
BOB = uuid.UUID("0c8f2a55-1d3e-4b7a-9e21-5a6b7c8d9e10")
BASE = "/api/v1/scrobble/connections"
CONNECTION_FIELDS = {
    "id",
    "user_id",
    "service",
    "enabled",
    "scrobble_threshold_percent",
    "sync_watch_status",
    "sync_ratings",
    "last_sync_at",
    "last_sync_status",
    "status",
    "status_reason",
    "external_user_name",
}


async def test_list_shows_only_the_callers_connections_without_tokens(gateway: Gateway) -> None:
    mine = await gateway.connect(ALICE, "trakt", access_token="alice-access", refresh_token="r1")
    await gateway.connect(ALICE, "lastfm", access_token="alice-session")
    await gateway.connect(BOB, "trakt", access_token="bob-access")

    answer = await gateway.client.get(BASE, headers=gateway.auth(ALICE))
    assert answer.status == 200
    body = await answer.json()
    assert body["next_cursor"] is None
    assert [c["service"] for c in body["items"]] == ["trakt", "lastfm"]
    first = body["items"][0]
    assert set(first) == CONNECTION_FIELDS
    assert first["id"] == str(mine)
    assert first["user_id"] == str(ALICE)
    assert first["status"] == "active"
    assert first["scrobble_threshold_percent"] == 80
    text = await answer.text()
    for secret in ("alice-access", "alice-session", "r1", "bob-access"):
        assert secret not in text


async def test_needs_reconnect_is_visible_with_its_reason(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt", access_token="a")
    await gateway.sql(
        "UPDATE connections SET status = 'needs_reconnect', "
        "status_reason = 'Trakt refused the token (401)' WHERE id = $1",
        connection,
    )
    body = await (await gateway.client.get(BASE, headers=gateway.auth(ALICE))).json()
    assert body["items"][0]["status"] == "needs_reconnect"
    assert body["items"][0]["status_reason"] == "Trakt refused the token (401)"


async def test_put_changes_the_settings_given_and_keeps_the_others(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt", sync_ratings=True)
    answer = await gateway.client.put(
        f"{BASE}/{connection}",
        json={"scrobble_threshold_percent": 90, "enabled": False},
        headers=gateway.auth(ALICE),
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert body["scrobble_threshold_percent"] == 90
    assert body["enabled"] is False
    assert body["sync_ratings"] is True
    rows = await gateway.sql(
        "SELECT enabled, scrobble_threshold_percent, sync_ratings FROM connections WHERE id = $1",
        connection,
    )
    assert dict(rows[0]) == {
        "enabled": False,
        "scrobble_threshold_percent": 90,
        "sync_ratings": True,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scrobble_threshold_percent": 0}, "scrobble_threshold_percent"),
        ({"scrobble_threshold_percent": 101}, "scrobble_threshold_percent"),
        ({"scrobble_threshold_percent": "80"}, "scrobble_threshold_percent"),
        ({"scrobble_threshold_percent": 80.5}, "scrobble_threshold_percent"),
        ({"enabled": "yes"}, "enabled"),
        ({"sync_rating": True}, "sync_rating"),
        ({"access_token": "x"}, "access_token"),
    ],
)
async def test_put_refuses_bad_settings_naming_the_field(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    connection = await gateway.connect(ALICE, "trakt")
    answer = await gateway.client.put(
        f"{BASE}/{connection}", json=body, headers=gateway.auth(ALICE)
    )
    assert answer.status == 422
    assert answer.content_type == "application/problem+json"
    problem = await answer.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert field in problem["detail"]
    rows = await gateway.sql("SELECT scrobble_threshold_percent FROM connections")
    assert rows[0]["scrobble_threshold_percent"] == 80


async def test_put_that_is_not_json_is_400(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt")
    answer = await gateway.client.put(
        f"{BASE}/{connection}", data=b"{nope", headers=gateway.auth(ALICE)
    )
    assert answer.status == 400
    assert answer.content_type == "application/problem+json"


async def _problem(answer: Any) -> tuple[int, str, dict[str, Any]]:
    return answer.status, answer.content_type, await answer.json()


async def test_another_users_connection_answers_exactly_as_a_missing_one(
    gateway: Gateway,
) -> None:
    bobs = await gateway.connect(BOB, "trakt", access_token="bob-access")
    missing = uuid.uuid4()
    alice = gateway.auth(ALICE)

    listed = await (await gateway.client.get(BASE, headers=alice)).json()
    assert listed["items"] == []

    change = {"enabled": False}
    put_bobs = await _problem(
        await gateway.client.put(f"{BASE}/{bobs}", json=change, headers=alice)
    )
    put_missing = await _problem(
        await gateway.client.put(f"{BASE}/{missing}", json=change, headers=alice)
    )
    assert put_bobs[0] == 404
    assert put_bobs == put_missing

    delete_bobs = await _problem(await gateway.client.delete(f"{BASE}/{bobs}", headers=alice))
    delete_missing = await _problem(await gateway.client.delete(f"{BASE}/{missing}", headers=alice))
    assert delete_bobs[0] == 404
    assert delete_bobs == delete_missing
    not_a_uuid = await gateway.client.delete(f"{BASE}/not-a-uuid", headers=alice)
    assert not_a_uuid.status == 404

    rows = await gateway.sql("SELECT enabled FROM connections WHERE id = $1", bobs)
    assert rows[0]["enabled"] is True


async def test_delete_removes_the_connection_and_its_secrets(gateway: Gateway) -> None:
    connection = await gateway.connect(
        ALICE, "listenbrainz", access_token="lb-user-token-1234567890"
    )
    other = await gateway.connect(ALICE, "trakt", access_token="keep-me")
    await gateway.sql(
        "INSERT INTO oauth_states (state, user_id, service, expires_at) "
        "VALUES ($1, $2, 'listenbrainz', now() + interval '10 minutes')",
        "s" * 40,
        ALICE,
    )
    answer = await gateway.client.delete(f"{BASE}/{connection}", headers=gateway.auth(ALICE))
    assert answer.status == 204
    assert await gateway.sql("SELECT id FROM connections WHERE id = $1", connection) == []
    assert await gateway.sql("SELECT state FROM oauth_states") == []
    kept = await gateway.sql("SELECT access_token_enc FROM connections WHERE id = $1", other)
    assert gateway.cipher.decrypt(kept[0]["access_token_enc"]) == "keep-me"
    again = await gateway.client.delete(f"{BASE}/{connection}", headers=gateway.auth(ALICE))
    assert again.status == 404
