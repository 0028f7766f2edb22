"""Real answers of the running app validate against the OpenAPI document it serves."""

from __future__ import annotations

import uuid
from typing import Any

from scrobble_gateway.openapi import load_document
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.openapi_check import answers_as_documented

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
API = "/api/v1/scrobble"


async def test_the_served_document_is_the_one_in_the_repository(gateway: Gateway) -> None:
    answer = await gateway.client.get("/api/v1/openapi.json")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert await answer.json() == load_document()


async def test_answers_of_every_route_match_the_document(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt", access_token="a", refresh_token="r")
    await gateway.sql(
        "UPDATE connections SET status = 'needs_reconnect', status_reason = 'refused' "
        "WHERE id = $1",
        connection,
    )
    lastfm = await gateway.connect(ALICE, "lastfm", access_token="s")
    alice, admin = gateway.auth(ALICE), gateway.auth(uuid.uuid4(), "admin")
    movie: dict[str, Any] = {
        "content_type": "movie",
        "content_id": str(uuid.uuid4()),
        "action": "stop",
        "watched_at": "2026-11-20T21:00:00Z",
        "progress_percent": 90,
        "external_ids": {"tmdb": 949},
    }
    queue = {"connection_id": str(connection), "request": movie}
    await gateway.sql(
        "INSERT INTO imported_items (connection_id, user_id, service, kind, content_type,"
        " item_key, occurred_at, rating) VALUES ($1, $2, 'trakt', 'rating', 'movie', 'm:1',"
        " now(), 8)",
        connection,
        ALICE,
    )
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("GET", "/healthz", "/healthz", {}),
        ("GET", "/readyz", "/readyz", {}),
        ("GET", "/metrics", "/metrics", {}),
        ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", {}),
        ("GET", f"{API}/connections", f"{API}/connections", {"headers": alice}),
        ("GET", f"{API}/connections", f"{API}/connections", {}),
        (
            "PUT",
            f"{API}/connections/{{id}}",
            f"{API}/connections/{connection}",
            {"headers": alice, "json": {"sync_ratings": True}},
        ),
        (
            "PUT",
            f"{API}/connections/{{id}}",
            f"{API}/connections/{connection}",
            {"headers": alice, "json": {"scrobble_threshold_percent": 0}},
        ),
        (
            "PUT",
            f"{API}/connections/{{id}}",
            f"{API}/connections/{uuid.uuid4()}",
            {"headers": alice, "json": {}},
        ),
        ("POST", f"{API}/queue", f"{API}/queue", {"headers": alice, "json": queue}),
        ("POST", f"{API}/queue", f"{API}/queue", {"headers": alice, "json": queue}),
        ("POST", f"{API}/queue", f"{API}/queue", {"headers": alice, "data": b"[1"}),
        ("GET", f"{API}/history", f"{API}/history", {"headers": alice}),
        ("GET", f"{API}/history", f"{API}/history?limit=0", {"headers": alice}),
        ("GET", f"{API}/imported", f"{API}/imported", {"headers": alice}),
        ("GET", f"{API}/admin/dead-letters", f"{API}/admin/dead-letters", {"headers": alice}),
        ("GET", f"{API}/admin/dead-letters", f"{API}/admin/dead-letters", {"headers": admin}),
        (
            "POST",
            f"{API}/admin/dead-letters/replay",
            f"{API}/admin/dead-letters/replay",
            {"headers": admin, "json": {"service": "trakt"}},
        ),
        ("POST", f"{API}/connect/{{service}}", f"{API}/connect/trakt", {"headers": alice}),
        (
            "POST",
            f"{API}/connect/{{service}}",
            f"{API}/connect/listenbrainz",
            {"headers": alice, "json": {}},
        ),
        (
            "GET",
            f"{API}/{{service}}/callback",
            f"{API}/trakt/callback?code=x&state={'s' * 43}",
            {},
        ),
        (
            "POST",
            f"{API}/connect/{{service}}/device",
            f"{API}/connect/trakt/device",
            {"headers": alice},
        ),
        (
            "POST",
            f"{API}/connect/{{service}}/device/poll",
            f"{API}/connect/trakt/device/poll",
            {"headers": alice, "json": {"device_code": "nope"}},
        ),
        (
            "DELETE",
            f"{API}/connections/{{id}}",
            f"{API}/connections/{lastfm}",
            {"headers": alice},
        ),
        (
            "DELETE",
            f"{API}/connections/{{id}}",
            f"{API}/connections/{lastfm}",
            {"headers": alice},
        ),
    ]
    statuses = await answers_as_documented(gateway.client, calls)
    # The calls above cover successes and failures alike.
    assert {200, 202, 204, 401, 403, 404, 422, 400} <= set(statuses)
