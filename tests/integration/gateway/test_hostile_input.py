"""Hostile input the gateway must answer with a 4xx problem, never a 5xx (issue 15): bodies
nested thousands deep or just past the depth bound, cursors that decode to such JSON or
were forged, bearer tokens whose JSON header is nested past every stack, and numbers no
JSON reader should turn into infinity. The cases the generated suite
(``test_schemathesis.py``) is unlikely to stumble on, written out by hand."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from scrobble_gateway.pagination import CursorSigner, Position
from scrobble_shared.json_limits import MAX_JSON_DEPTH
from tests.integration.gateway.conftest import Gateway, bearer
from tests.integration.gateway.test_history import add_scrobble

pytestmark = pytest.mark.integration

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
API = "/api/v1/scrobble"
MOVIE = "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d01"
LIST_ROUTES = (
    f"{API}/history",
    f"{API}/imported",
    f"{API}/import/jobs",
    f"{API}/sources",
    f"{API}/admin/dead-letters",
)


def nested_arrays(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def nested_objects(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def assert_problem(answer: Any, *statuses: int) -> dict[str, Any]:
    text = await answer.text()
    assert answer.status in statuses, (answer.status, text[:300])
    assert answer.content_type == "application/problem+json", text[:300]
    body: dict[str, Any] = json.loads(text)
    return body


async def test_bodies_nested_five_thousand_deep_are_400(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt")
    headers = {**gateway.auth(ALICE, "admin"), "Content-Type": "application/json"}
    deep = nested_arrays(5000)
    for method, path in (
        ("POST", f"{API}/queue"),
        ("PUT", f"{API}/connections/{connection}"),
        ("POST", f"{API}/sources"),
        ("POST", f"{API}/import/trakt"),
        ("POST", f"{API}/admin/dead-letters/replay"),
    ):
        answer = await gateway.client.request(method, path, data=deep, headers=headers)
        body = await assert_problem(answer, 400)
        assert "nested" in body["detail"], (method, path, body)


async def test_a_body_just_past_the_depth_bound_is_400_and_one_within_it_is_read(
    gateway: Gateway,
) -> None:
    connection = await gateway.connect(ALICE, "trakt", access_token="t")
    headers = gateway.auth(ALICE)

    def queued(content: Any) -> dict[str, Any]:
        request = {
            "content_type": "movie",
            "content_id": MOVIE,
            "action": "stop",
            "watched_at": "2026-11-20T21:00:00Z",
            "progress_percent": 95,
            "content": {"title": "Heat", "extra": content},
        }
        return {"connection_id": str(connection), "request": request}

    # body > request > content > extra: three levels above what is nested in extra.
    too_deep = queued(nested_objects(MAX_JSON_DEPTH))
    answer = await gateway.client.post(f"{API}/queue", json=too_deep, headers=headers)
    body = await assert_problem(answer, 400)
    assert f"deeper than {MAX_JSON_DEPTH}" in body["detail"]

    # The same body within the bound gets past the reader (to the model: 202 or a 422).
    within = queued(nested_objects(MAX_JSON_DEPTH - 5))
    answer = await gateway.client.post(f"{API}/queue", json=within, headers=headers)
    assert answer.status in (202, 422), await answer.text()


async def test_numbers_beyond_a_double_are_refused_not_infinity(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt", access_token="t")
    body = {
        "connection_id": str(connection),
        "request": {
            "content_type": "movie",
            "content_id": MOVIE,
            "action": "stop",
            "progress_percent": 95,
            "content": {"title": "Heat", "x": "INFINITE"},
        },
    }
    raw = json.dumps(body).replace('"INFINITE"', "1e999")
    answer = await gateway.client.post(
        f"{API}/queue",
        data=raw,
        headers={**gateway.auth(ALICE), "Content-Type": "application/json"},
    )
    await assert_problem(answer, 400)


@pytest.mark.parametrize("route", LIST_ROUTES)
async def test_cursors_that_decode_to_deep_json_are_422(gateway: Gateway, route: str) -> None:
    headers = gateway.auth(ALICE, "admin")
    for raw in (nested_arrays(2500), nested_arrays(200), b'["' + b"9" * 5000 + b'"]'):
        answer = await gateway.client.get(route, params={"cursor": b64(raw)}, headers=headers)
        body = await assert_problem(answer, 422)
        assert [e["field"] for e in body["errors"]] == ["cursor"]


async def test_a_cursor_of_our_old_shape_that_we_did_not_sign_is_422(gateway: Gateway) -> None:
    """What any client could write: the sort key it wants, as the cursor used to carry it."""
    await add_scrobble(gateway, await gateway.connect(ALICE, "trakt"), ALICE, 1)
    forged = b64(json.dumps(["2999-01-01T00:00:00+00:00", str(uuid.uuid4())]).encode())
    answer = await gateway.client.get(
        f"{API}/history", params={"cursor": forged}, headers=gateway.auth(ALICE)
    )
    body = await assert_problem(answer, 422)
    assert [e["field"] for e in body["errors"]] == ["cursor"]


async def test_a_cursor_changed_by_one_character_is_422_and_the_real_one_works(
    gateway: Gateway,
) -> None:
    trakt = await gateway.connect(ALICE, "trakt")
    for n in range(3):
        await add_scrobble(gateway, trakt, ALICE, n)
    headers = gateway.auth(ALICE)
    first = await gateway.client.get(f"{API}/history", params={"limit": "1"}, headers=headers)
    cursor = (await first.json())["next_cursor"]
    assert cursor is not None
    following = await gateway.client.get(
        f"{API}/history", params={"limit": "1", "cursor": cursor}, headers=headers
    )
    assert following.status == 200, await following.text()
    for position in (0, len(cursor) // 2, len(cursor) - 1):
        changed = cursor[:position] + ("A" if cursor[position] != "A" else "B")
        changed += cursor[position + 1 :]
        answer = await gateway.client.get(
            f"{API}/history", params={"limit": "1", "cursor": changed}, headers=headers
        )
        await assert_problem(answer, 422)


async def test_a_cursor_signed_by_another_install_is_422(gateway: Gateway) -> None:
    stranger = CursorSigner([b"another install's key, 32 bytes"])
    position = Position(at=datetime.now(UTC), id=uuid.uuid4())
    answer = await gateway.client.get(
        f"{API}/history",
        params={"cursor": stranger.encode(position)},
        headers=gateway.auth(ALICE),
    )
    await assert_problem(answer, 422)


async def test_bearer_tokens_with_deep_or_huge_json_are_401(gateway: Gateway) -> None:
    deep_header = b'{"alg":"HS256","typ":"JWT","x":' + nested_arrays(3000) + b"}"
    deep_payload = b'{"sub":' + nested_arrays(3000) + b"}"
    plain_header = b'{"alg":"HS256","typ":"JWT"}'
    for header, payload in ((deep_header, b"{}"), (plain_header, deep_payload)):
        token = f"{b64(header)}.{b64(payload)}.{b64(b'not-a-signature')}"
        answer = await gateway.client.get(f"{API}/connections", headers=bearer(token))
        body = await assert_problem(answer, 401)
        assert "WWW-Authenticate" in answer.headers, body
