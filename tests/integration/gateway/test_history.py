"""History, imported items and the admin dead-letter routes: pages, cursors, filters, and
nobody else's rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.gateway.conftest import Gateway

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
BOB = uuid.UUID("0c8f2a55-1d3e-4b7a-9e21-5a6b7c8d9e10")
HISTORY = "/api/v1/scrobble/history"
IMPORTED = "/api/v1/scrobble/imported"
DEAD = "/api/v1/scrobble/admin/dead-letters"
T0 = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


async def add_scrobble(
    gateway: Gateway,
    connection: uuid.UUID,
    user: uuid.UUID,
    n: int,
    status: str = "sent",
    *,
    service: str = "trakt",
    created_at: datetime | None = None,
) -> uuid.UUID:
    errors = {"failed": "Trakt said no", "dead": "Trakt does not know this movie (404)"}
    rows = await gateway.sql(
        "INSERT INTO scrobbles (connection_id, user_id, service, dedupe_key, kind, content_type,"
        " content_id, request, occurred_at, status, attempts, last_error, last_http_status,"
        " sent_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'scrobble', 'movie',"
        " gen_random_uuid(), $5, $6, $7, 1, $8, $9, $10, $11, $11) RETURNING id",
        connection,
        user,
        service,
        f"test:{n}",
        json.dumps({"n": n}),
        T0 + timedelta(minutes=n),
        status,
        errors.get(status),
        404 if status == "dead" else 201,
        T0 if status == "sent" else None,
        created_at or T0 + timedelta(minutes=n),
    )
    scrobble_id: uuid.UUID = rows[0]["id"]
    return scrobble_id


async def pages(gateway: Gateway, path: str, headers: dict[str, str], **query: Any) -> list[Any]:
    """Follow next_cursor to the end; the items of every page in order."""
    found: list[list[dict[str, Any]]] = []
    params = {k: str(v) for k, v in query.items()}
    while True:
        answer = await gateway.client.get(path, params=params, headers=headers)
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        found.append(body["items"])
        if body["next_cursor"] is None:
            return found
        params["cursor"] = body["next_cursor"]
        assert len(found) < 50, "cursor never ends"


async def test_history_pages_newest_first_with_every_row_once(gateway: Gateway) -> None:
    trakt = await gateway.connect(ALICE, "trakt")
    same_moment = T0 + timedelta(hours=1)
    ids = [await add_scrobble(gateway, trakt, ALICE, n) for n in range(5)]
    # Rows created in one transaction share created_at: the id breaks the tie.
    ids += [await add_scrobble(gateway, trakt, ALICE, n, created_at=same_moment) for n in (5, 6)]
    found = await pages(gateway, HISTORY, gateway.auth(ALICE), limit=2)
    assert [len(p) for p in found] == [2, 2, 2, 1]
    seen = [item["id"] for page in found for item in page]
    assert sorted(seen) == sorted(str(i) for i in ids)
    created = [item["created_at"] for page in found for item in page]
    assert created == sorted(created, reverse=True)
    first = found[0][0]
    assert first["status"] == "sent"
    assert first["last_http_status"] == 201
    assert first["request"] in ({"n": 5}, {"n": 6})


async def test_history_filters_by_status_and_connection(gateway: Gateway) -> None:
    trakt = await gateway.connect(ALICE, "trakt")
    lastfm = await gateway.connect(ALICE, "lastfm")
    await add_scrobble(gateway, trakt, ALICE, 1, "sent")
    dead = await add_scrobble(gateway, trakt, ALICE, 2, "dead")
    await add_scrobble(gateway, lastfm, ALICE, 3, "dead", service="lastfm")
    await add_scrobble(gateway, trakt, ALICE, 4, "failed")
    headers = gateway.auth(ALICE)

    found = await pages(gateway, HISTORY, headers, status="dead", connection_id=trakt, limit=1)
    assert [[item["id"] for item in page] for page in found] == [[str(dead)]]
    item = found[0][0]
    assert item["last_error"] == "Trakt does not know this movie (404)"
    assert item["last_http_status"] == 404
    assert item["attempts"] == 1

    by_connection = await pages(gateway, HISTORY, headers, connection_id=lastfm)
    assert [i["service"] for p in by_connection for i in p] == ["lastfm"]
    failed = await pages(gateway, HISTORY, headers, status="failed")
    assert [i["last_error"] for p in failed for i in p] == ["Trakt said no"]


async def test_history_shows_nobody_elses_rows(gateway: Gateway) -> None:
    bobs = await gateway.connect(BOB, "trakt")
    await add_scrobble(gateway, bobs, BOB, 1)
    alice = gateway.auth(ALICE)
    assert await pages(gateway, HISTORY, alice) == [[]]
    for connection_id in (bobs, uuid.uuid4()):
        answer = await gateway.client.get(
            HISTORY, params={"connection_id": str(connection_id)}, headers=alice
        )
        assert answer.status == 404
        assert answer.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "lost"}, "status"),
        ({"connection_id": "nope"}, "connection_id"),
        ({"statuss": "sent"}, "statuss"),
    ],
)
async def test_bad_list_parameters_are_422_naming_them(
    gateway: Gateway, query: dict[str, str], field: str
) -> None:
    answer = await gateway.client.get(HISTORY, params=query, headers=gateway.auth(ALICE))
    assert answer.status == 422
    assert [e["field"] for e in (await answer.json())["errors"]] == [field]


async def test_imported_items_page_and_stay_private(gateway: Gateway) -> None:
    trakt = await gateway.connect(ALICE, "trakt")
    bobs = await gateway.connect(BOB, "trakt")
    for n in range(3):
        for connection, user in ((trakt, ALICE), (bobs, BOB)):
            await gateway.sql(
                "INSERT INTO imported_items (connection_id, user_id, service, kind, content_type,"
                " item_key, title, external_ids, occurred_at, imported_at) VALUES ($1, $2,"
                " 'trakt', 'play', 'movie', $3, 'Heat', '{\"imdb\": \"tt0113277\"}', $4, $4)",
                connection,
                user,
                f"movie:trakt:{n}",
                T0 + timedelta(minutes=n),
            )
    found = await pages(gateway, IMPORTED, gateway.auth(ALICE), limit=2)
    assert [len(p) for p in found] == [2, 1]
    items = [i for p in found for i in p]
    assert [i["item_key"] for i in items] == ["movie:trakt:2", "movie:trakt:1", "movie:trakt:0"]
    assert {i["connection_id"] for i in items} == {str(trakt)}
    assert items[0]["external_ids"] == {"imdb": "tt0113277"}
    foreign = await gateway.client.get(
        IMPORTED, params={"connection_id": str(bobs)}, headers=gateway.auth(ALICE)
    )
    assert foreign.status == 404


async def test_admin_lists_dead_letters_of_every_user_and_replays_them(gateway: Gateway) -> None:
    alices = await gateway.connect(ALICE, "trakt")
    bobs = await gateway.connect(BOB, "lastfm")
    dead = [
        await add_scrobble(gateway, alices, ALICE, 1, "dead"),
        await add_scrobble(gateway, bobs, BOB, 2, "dead", service="lastfm"),
        await add_scrobble(gateway, alices, ALICE, 3, "dead"),
    ]
    await add_scrobble(gateway, alices, ALICE, 4, "sent")
    admin = gateway.auth(uuid.uuid4(), "admin")

    found = await pages(gateway, DEAD, admin, limit=2)
    assert [[i["id"] for i in p] for p in found] == [[str(dead[0]), str(dead[1])], [str(dead[2])]]
    assert {i["user_id"] for p in found for i in p} == {str(ALICE), str(BOB)}
    only_lastfm = await pages(gateway, DEAD, admin, service="lastfm")
    assert [i["id"] for p in only_lastfm for i in p] == [str(dead[1])]

    one = await gateway.client.post(f"{DEAD}/replay", json={"id": str(dead[0])}, headers=admin)
    assert await one.json() == {"replayed": 1}
    missing = await gateway.client.post(f"{DEAD}/replay", json={"id": str(dead[0])}, headers=admin)
    assert missing.status == 404
    by_service = await gateway.client.post(
        f"{DEAD}/replay", json={"service": "lastfm"}, headers=admin
    )
    assert await by_service.json() == {"replayed": 1}
    rows = await gateway.sql("SELECT id, status, attempts FROM scrobbles ORDER BY occurred_at")
    assert [(r["status"], r["attempts"]) for r in rows] == [
        ("retrying", 0),
        ("retrying", 0),
        ("dead", 1),
        ("sent", 1),
    ]
    rest = await gateway.client.post(f"{DEAD}/replay", headers=admin)
    assert await rest.json() == {"replayed": 1}
    assert await pages(gateway, DEAD, admin) == [[]]


async def test_replay_refuses_unknown_fields(gateway: Gateway) -> None:
    admin = gateway.auth(uuid.uuid4(), "admin")
    answer = await gateway.client.post(f"{DEAD}/replay", json={"servise": "trakt"}, headers=admin)
    assert answer.status == 422
    assert [e["field"] for e in (await answer.json())["errors"]] == ["servise"]
