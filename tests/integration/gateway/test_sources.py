"""The ``/sources`` routes: who sees and changes which source, the secret shown once and
stored only as its SHA-256, mappings only onto oneself unless admin, rotation, validation
naming the fields, no secret in a later answer or a log line, answers as documented."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from typing import Any

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from scrobble_gateway.keys import SETTINGS
from scrobble_gateway.openapi import load_document
from scrobble_shared.db.sources import source_by_secret
from tests.integration.gateway.conftest import (
    AnswerLog,
    Gateway,
    bearer,
    make_token,
    open_gateway,
    open_logged_gateway,
)
from tests.integration.gateway.openapi_check import answers_as_documented
from tests.support.infra import Infra
from tests.support.topics import Topics

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
BOB = uuid.UUID("0c8f2a55-1d3e-4b7a-9e21-5a6b7c8d9e10")
ADMIN = uuid.UUID("a0a0a0a0-1111-4222-8333-444455556666")
BASE = "/api/v1/scrobble/sources"
SOURCE_FIELDS = {
    "id",
    "kind",
    "name",
    "owner_id",
    "personal",
    "filters",
    "mappings",
    "created_at",
    "updated_at",
    "webhook_path_template",
}
DEFAULT_FILTERS = {
    "allow_libraries": [],
    "deny_libraries": [],
    "allow_server_users": [],
    "deny_server_users": [],
    "min_duration_s": 0,
    "anime_libraries": [],
}
SECRET = re.compile(r"[A-Za-z0-9_-]{32,}")


def admin(gateway: Gateway) -> dict[str, str]:
    return gateway.auth(ADMIN, "admin")


async def create(gateway: Gateway, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = await gateway.client.post(BASE, json={"kind": "jellyfin", **body}, headers=headers)
    assert answer.status == 201, await answer.text()
    made: dict[str, Any] = await answer.json()
    return made


async def listed(gateway: Gateway, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    answer = await gateway.client.get(f"{BASE}{query}", headers=headers)
    assert answer.status == 200, await answer.text()
    body: dict[str, Any] = await answer.json()
    return body


async def find_by_secret(gateway: Gateway, secret: str) -> Any:
    conn = await asyncpg.connect(gateway.database_url)
    try:
        return await source_by_secret(conn, secret)
    finally:
        await conn.close()


async def source_count(gateway: Gateway) -> int:
    rows = await gateway.sql("SELECT count(*) AS n FROM sources")
    count: int = rows[0]["n"]
    return count


# --- who sees what ----------------------------------------------------------------------


async def test_a_user_lists_their_own_sources_and_an_admin_every_one(gateway: Gateway) -> None:
    alice, bob = gateway.auth(ALICE), gateway.auth(BOB)
    first = await create(gateway, alice, name="Living room")
    second = await create(gateway, alice, kind="plex", name="Plex")
    bobs = await create(gateway, bob, name="Bob's")
    operators = await create(gateway, admin(gateway), kind="events", name="Host", owner_id=None)

    mine = await listed(gateway, alice)
    assert [s["id"] for s in mine["items"]] == [first["id"], second["id"]]
    assert mine["next_cursor"] is None
    assert set(mine["items"][0]) == SOURCE_FIELDS
    assert mine["items"][0]["owner_id"] == str(ALICE)
    assert [s["id"] for s in (await listed(gateway, bob))["items"]] == [bobs["id"]]
    everyone = await listed(gateway, admin(gateway))
    assert [s["id"] for s in everyone["items"]] == [
        first["id"],
        second["id"],
        bobs["id"],
        operators["id"],
    ]


async def test_pages_follow_the_cursor_to_the_end(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    made = [(await create(gateway, alice, name=f"server {i}"))["id"] for i in range(5)]
    await create(gateway, gateway.auth(BOB), name="not Alice's")

    seen, pages, query = [], 0, "?limit=2"
    while True:
        body = await listed(gateway, alice, query)
        pages += 1
        seen += [s["id"] for s in body["items"]]
        assert len(body["items"]) <= 2
        if body["next_cursor"] is None:
            break
        query = f"?limit=2&cursor={body['next_cursor']}"
    assert seen == made
    assert pages == 3
    # The default page holds them all.
    assert [s["id"] for s in (await listed(gateway, alice))["items"]] == made


async def test_paging_goes_on_when_the_last_source_of_a_page_is_deleted(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    made = [(await create(gateway, alice, name=f"server {i}"))["id"] for i in range(3)]
    first = await listed(gateway, alice, "?limit=1")
    assert [s["id"] for s in first["items"]] == made[:1]
    assert (await gateway.client.delete(f"{BASE}/{made[0]}", headers=alice)).status == 204
    rest = await listed(gateway, alice, f"?limit=5&cursor={first['next_cursor']}")
    assert [s["id"] for s in rest["items"]] == made[1:]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=two", "limit"),
        ("?cursor=not-ours", "cursor"),
        ("?owner=me", "owner"),
    ],
)
async def test_bad_list_parameters_are_named(gateway: Gateway, query: str, field: str) -> None:
    answer = await gateway.client.get(f"{BASE}{query}", headers=gateway.auth(ALICE))
    assert answer.status == 422
    assert answer.content_type == "application/problem+json"
    assert [e["field"] for e in (await answer.json())["errors"]] == [field]


# --- creating: the secret once, stored hashed -------------------------------------------


async def test_a_user_creates_a_source_and_sees_its_secret_only_then(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    answer = await gateway.client.post(
        BASE, json={"kind": "jellyfin", "name": "  Living room  "}, headers=alice
    )
    assert answer.status == 201, await answer.text()
    made = await answer.json()
    assert set(made) == SOURCE_FIELDS | {"secret", "webhook_url"}
    secret = made["secret"]
    assert SECRET.fullmatch(secret)
    public = gateway.settings.intake_public_url.rstrip("/")
    assert made["webhook_url"] == f"{public}/api/v1/intake/jellyfin/{secret}"
    assert answer.headers["Location"] == f"{BASE}/{made['id']}"
    assert made["name"] == "Living room"
    assert made["owner_id"] == str(ALICE)
    assert made["personal"] is True
    assert made["mappings"] == []
    assert made["filters"] == DEFAULT_FILTERS
    assert made["webhook_path_template"] == "/api/v1/intake/jellyfin/<secret>"

    for path in (BASE, answer.headers["Location"]):
        later = await gateway.client.get(path, headers=alice)
        assert later.status == 200
        text = await later.text()
        assert secret not in text
        assert "secret_hash" not in text
    shown = await (await gateway.client.get(answer.headers["Location"], headers=alice)).json()
    assert shown == {k: v for k, v in made.items() if k not in ("secret", "webhook_url")}

    [row] = await gateway.sql(
        "SELECT secret_hash, row_to_json(s)::text AS everything FROM sources s"
    )
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in row["everything"]
    assert secret.encode().hex() not in row["everything"]


async def test_the_webhook_url_is_on_the_configured_intake(
    infra: Infra, database_url: str, topics: Topics
) -> None:
    def elsewhere(app: web.Application) -> None:
        app[SETTINGS] = app[SETTINGS].model_copy(
            update={"intake_public_url": "https://media.example.org/intake/"}
        )

    gateway = await open_gateway(infra, database_url, topics, prepare=elsewhere)
    try:
        made = await create(gateway, gateway.auth(ALICE), kind="plex", name="Plex")
    finally:
        await gateway.client.close()
    expected = f"https://media.example.org/intake/api/v1/intake/plex/{made['secret']}"
    assert made["webhook_url"] == expected


async def test_filters_given_at_creation_are_kept(gateway: Gateway) -> None:
    filters = {"allow_libraries": [" Movies ", "Anime"], "min_duration_s": 60}
    made = await create(gateway, gateway.auth(ALICE), name="Emby", kind="emby", filters=filters)
    assert made["filters"] == {
        **DEFAULT_FILTERS,
        "allow_libraries": ["Movies", "Anime"],
        "min_duration_s": 60,
    }


async def test_only_an_admin_creates_for_another_owner_or_for_none(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    for owner, why in ((str(BOB), "for another user"), (None, "without an owner")):
        answer = await gateway.client.post(
            BASE, json={"kind": "plex", "name": "x", "owner_id": owner}, headers=alice
        )
        assert answer.status == 403, owner
        assert answer.content_type == "application/problem+json"
        assert (await answer.json())["detail"] == f"only an admin may create a source {why}"
    assert await source_count(gateway) == 0
    # Naming oneself is the same as leaving owner_id out.
    own = await create(gateway, alice, name="mine", owner_id=str(ALICE))
    assert own["owner_id"] == str(ALICE)

    for_bob = await create(gateway, admin(gateway), name="Bob's", owner_id=str(BOB))
    assert for_bob["owner_id"] == str(BOB)
    operators = await create(gateway, admin(gateway), kind="events", name="Host", owner_id=None)
    assert operators["owner_id"] is None
    assert operators["personal"] is False
    admins_own = await create(gateway, admin(gateway), name="Admin's")
    assert admins_own["owner_id"] == str(ADMIN)
    assert [s["id"] for s in (await listed(gateway, gateway.auth(BOB)))["items"]] == [for_bob["id"]]


# --- another user's source is not found -------------------------------------------------


async def test_another_users_source_answers_404_like_a_missing_one(gateway: Gateway) -> None:
    bobs = await create(gateway, gateway.auth(BOB), name="Bob's")
    alice = gateway.auth(ALICE)
    assert (await listed(gateway, alice))["items"] == []
    mapping = {"server_user": "alice", "user_id": str(ALICE)}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "{}", {}),
        ("PUT", "{}", {"json": {"name": "taken"}}),
        ("DELETE", "{}", {}),
        ("POST", "{}/rotate", {}),
        ("POST", "{}/mappings", {"json": mapping}),
        ("DELETE", "{}/mappings/bob", {}),
    ]
    for method, template, options in calls:
        answers = []
        for source_id in (bobs["id"], str(uuid.uuid4())):
            path = f"{BASE}/" + template.format(source_id)
            answer = await gateway.client.request(method, path, headers=alice, **options)
            answers.append((answer.status, await answer.json()))
        assert answers[0] == answers[1] == (404, answers[1][1]), (method, template)
        assert answers[0][0] == 404
    [row] = await gateway.sql("SELECT name, secret_hash FROM sources WHERE id = $1", bobs["id"])
    assert row["name"] == "Bob's"
    assert bytes(row["secret_hash"]) == hashlib.sha256(bobs["secret"].encode()).digest()
    # An admin reaches it.
    answer = await gateway.client.get(f"{BASE}/{bobs['id']}", headers=admin(gateway))
    assert answer.status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{BASE}/not-a-uuid"),
        ("PUT", f"{BASE}/not-a-uuid"),
        ("DELETE", f"{BASE}/not-a-uuid"),
        ("POST", f"{BASE}/not-a-uuid/rotate"),
        ("POST", f"{BASE}/not-a-uuid/mappings"),
        ("DELETE", f"{BASE}/not-a-uuid/mappings/someone"),
    ],
)
async def test_a_path_id_that_is_not_a_uuid_is_not_found(
    gateway: Gateway, method: str, path: str
) -> None:
    body = {"name": "x"} if method == "PUT" else {"server_user": "x", "user_id": str(ALICE)}
    answer = await gateway.client.request(method, path, json=body, headers=gateway.auth(ALICE))
    assert answer.status == 404
    assert answer.content_type == "application/problem+json"


async def test_sources_need_a_bearer_token(gateway: Gateway) -> None:
    answer = await gateway.client.get(BASE)
    assert answer.status == 401
    assert "WWW-Authenticate" in answer.headers


# --- changing and deleting --------------------------------------------------------------


async def test_put_renames_and_replaces_the_whole_filter_object(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    made = await create(
        gateway, alice, name="old", filters={"allow_libraries": ["Movies"], "min_duration_s": 60}
    )
    path = f"{BASE}/{made['id']}"
    answer = await gateway.client.put(
        path, json={"filters": {"deny_libraries": ["Kids"]}}, headers=alice
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert body["filters"] == {**DEFAULT_FILTERS, "deny_libraries": ["Kids"]}
    assert body["name"] == "old"
    assert body["updated_at"] > made["updated_at"]

    renamed = await (await gateway.client.put(path, json={"name": " new "}, headers=alice)).json()
    assert renamed["name"] == "new"
    assert renamed["filters"] == body["filters"]
    [row] = await gateway.sql(
        "SELECT name, filters::text AS f FROM sources WHERE id = $1", made["id"]
    )
    assert row["name"] == "new"
    assert "Kids" in row["f"]
    assert "Movies" not in row["f"]


async def test_delete_removes_the_source_and_its_mappings(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    made = await create(gateway, alice, name="gone soon")
    mapped = await gateway.client.post(
        f"{BASE}/{made['id']}/mappings",
        json={"server_user": "alice", "user_id": str(ALICE)},
        headers=alice,
    )
    assert mapped.status == 200
    answer = await gateway.client.delete(f"{BASE}/{made['id']}", headers=alice)
    assert answer.status == 204
    again = await gateway.client.delete(f"{BASE}/{made['id']}", headers=alice)
    assert again.status == 404
    assert await source_count(gateway) == 0
    assert await gateway.sql("SELECT * FROM source_users") == []
    assert await find_by_secret(gateway, made["secret"]) is None


# --- mappings ---------------------------------------------------------------------------


async def test_an_owner_maps_server_users_only_onto_themselves(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    made = await create(gateway, alice, name="Jellyfin")
    path = f"{BASE}/{made['id']}/mappings"

    answer = await gateway.client.post(
        path, json={"server_user": "  Alice-TV ", "user_id": str(ALICE)}, headers=alice
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert body["mappings"] == [{"server_user": "alice-tv", "user_id": str(ALICE)}]
    assert body["personal"] is False

    onto_bob = await gateway.client.post(
        path, json={"server_user": "kid", "user_id": str(BOB)}, headers=alice
    )
    assert onto_bob.status == 403
    assert onto_bob.content_type == "application/problem+json"
    assert "another user" in (await onto_bob.json())["detail"]
    rows = await gateway.sql("SELECT server_user, user_id FROM source_users")
    assert [(r["server_user"], r["user_id"]) for r in rows] == [("alice-tv", ALICE)]


async def test_an_admin_maps_onto_anyone_and_mappings_are_removed(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    made = await create(gateway, alice, name="Jellyfin")
    path = f"{BASE}/{made['id']}/mappings"
    mine = {"server_user": "Zed", "user_id": str(ALICE)}
    assert (await gateway.client.post(path, json=mine, headers=alice)).status == 200

    answer = await gateway.client.post(
        path, json={"server_user": "Kid", "user_id": str(BOB)}, headers=admin(gateway)
    )
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["mappings"] == [
        {"server_user": "kid", "user_id": str(BOB)},
        {"server_user": "zed", "user_id": str(ALICE)},
    ]

    removed = await gateway.client.delete(f"{path}/KID", headers=alice)
    assert removed.status == 204
    shown = await (await gateway.client.get(f"{BASE}/{made['id']}", headers=alice)).json()
    assert shown["mappings"] == [{"server_user": "zed", "user_id": str(ALICE)}]
    # Removing what is not mapped is no error.
    assert (await gateway.client.delete(f"{path}/nobody", headers=alice)).status == 204
    bad = await gateway.client.delete(f"{path}/a%00b", headers=alice)
    assert bad.status == 422
    assert [e["field"] for e in (await bad.json())["errors"]] == ["server_user"]


# --- rotating ---------------------------------------------------------------------------


async def test_rotate_gives_a_new_secret_and_the_old_one_is_refused(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    made = await create(gateway, alice, kind="emby", name="Emby")
    old = made["secret"]
    found = await find_by_secret(gateway, old)
    assert found is not None
    assert str(found.id) == made["id"]

    answer = await gateway.client.post(f"{BASE}/{made['id']}/rotate", headers=alice)
    assert answer.status == 200, await answer.text()
    rotated = await answer.json()
    assert set(rotated) == SOURCE_FIELDS | {"secret", "webhook_url"}
    new = rotated["secret"]
    assert new != old
    assert SECRET.fullmatch(new)
    public = gateway.settings.intake_public_url.rstrip("/")
    assert rotated["webhook_url"] == f"{public}/api/v1/intake/emby/{new}"
    assert await find_by_secret(gateway, old) is None
    now = await find_by_secret(gateway, new)
    assert now is not None
    assert str(now.id) == made["id"]
    [row] = await gateway.sql("SELECT secret_hash FROM sources")
    assert bytes(row["secret_hash"]) == hashlib.sha256(new.encode()).digest()


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "jellyfin", "name": "x", "colour": "red"}, "colour"),
        ({"kind": "kodi", "name": "x"}, "kind"),
        ({"name": "x"}, "kind"),
        ({"kind": "plex"}, "name"),
        ({"kind": "plex", "name": "   "}, "name"),
        ({"kind": "plex", "name": "x" * 201}, "name"),
        ({"kind": "plex", "name": 7}, "name"),
        ({"kind": "plex", "name": "a\x00b"}, "name"),
        ({"kind": "plex", "name": "x", "owner_id": "me"}, "owner_id"),
        (
            {"kind": "plex", "name": "x", "filters": {"min_duration_s": "5"}},
            "filters.min_duration_s",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"min_duration_s": -1}},
            "filters.min_duration_s",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"min_duration_s": True}},
            "filters.min_duration_s",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"allow_libraries": [""]}},
            "filters.allow_libraries.0",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"deny_libraries": ["ok", "  "]}},
            "filters.deny_libraries.1",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"allow_server_users": ["u" * 257]}},
            "filters.allow_server_users.0",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"deny_server_users": [5]}},
            "filters.deny_server_users.0",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"anime_libraries": ["a"] * 201}},
            "filters.anime_libraries",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"allow_libraries": "Movies"}},
            "filters.allow_libraries",
        ),
        (
            {"kind": "plex", "name": "x", "filters": {"allow_libraries": ["a\x00"]}},
            "filters.allow_libraries.0",
        ),
        ({"kind": "plex", "name": "x", "filters": {"libraries": []}}, "filters.libraries"),
        ({"kind": "plex", "name": "x", "filters": []}, "filters"),
    ],
)
async def test_a_bad_new_source_is_a_422_naming_the_field(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    answer = await gateway.client.post(BASE, json=body, headers=gateway.auth(ALICE))
    assert answer.status == 422, await answer.text()
    assert answer.content_type == "application/problem+json"
    problem = await answer.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert await source_count(gateway) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "plex"}, "kind"),
        ({"name": ""}, "name"),
        ({"filters": {"min_duration_s": "5"}}, "filters.min_duration_s"),
        ({"filters": {"allow_libraries": [""]}}, "filters.allow_libraries.0"),
    ],
)
async def test_a_bad_change_is_a_422_naming_the_field(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    made = await create(gateway, gateway.auth(ALICE), name="kept")
    answer = await gateway.client.put(
        f"{BASE}/{made['id']}", json=body, headers=gateway.auth(ALICE)
    )
    assert answer.status == 422
    assert field in [e["field"] for e in (await answer.json())["errors"]]
    [row] = await gateway.sql("SELECT name, kind FROM sources")
    assert (row["name"], row["kind"]) == ("kept", "jellyfin")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"server_user": "", "user_id": str(ALICE)}, "server_user"),
        ({"server_user": "   ", "user_id": str(ALICE)}, "server_user"),
        ({"server_user": "u" * 257, "user_id": str(ALICE)}, "server_user"),
        # Case-folded, 200 of these are 400 characters: longer than a mapping can be.
        ({"server_user": "ß" * 200, "user_id": str(ALICE)}, "server_user"),
        ({"server_user": "a\x00", "user_id": str(ALICE)}, "server_user"),
        ({"server_user": "alice", "user_id": "me"}, "user_id"),
        ({"server_user": "alice"}, "user_id"),
        ({"server_user": "alice", "user_id": str(ALICE), "admin": True}, "admin"),
    ],
)
async def test_a_bad_mapping_is_a_422_naming_the_field(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    made = await create(gateway, gateway.auth(ALICE), name="Jellyfin")
    answer = await gateway.client.post(
        f"{BASE}/{made['id']}/mappings", json=body, headers=gateway.auth(ALICE)
    )
    assert answer.status == 422, await answer.text()
    assert field in [e["field"] for e in (await answer.json())["errors"]]
    assert await gateway.sql("SELECT * FROM source_users") == []


@pytest.mark.parametrize(("data", "status"), [(b"{not json", 400), (b"", 400), (b"[1]", 422)])
async def test_a_body_that_is_no_json_object_is_refused(
    gateway: Gateway, data: bytes, status: int
) -> None:
    answer = await gateway.client.post(
        BASE, data=data, headers={**gateway.auth(ALICE), "Content-Type": "application/json"}
    )
    assert answer.status == status
    assert answer.content_type == "application/problem+json"


# --- no secret in later answers or logs; answers as documented --------------------------


async def test_no_source_secret_reaches_a_later_answer_or_a_log_line(
    infra: Infra, database_url: str, topics: Topics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = await open_logged_gateway(infra, database_url, topics)
    token = make_token(ALICE)
    alice = bearer(token)
    secrets: list[str] = []
    later = AnswerLog()
    keep = later.keep

    try:
        client = gateway.client
        made = await create(gateway, alice, name="Jellyfin")
        secrets.append(made["secret"])
        path = f"{BASE}/{made['id']}"
        rotated = await client.post(f"{path}/rotate", headers=alice)
        assert rotated.status == 200
        secrets.append((await rotated.json())["secret"])
        await keep(await client.get(BASE, headers=alice))
        await keep(await client.get(path, headers=alice))
        await keep(await client.put(path, json={"name": "Jellyfin 2"}, headers=alice))
        await keep(await client.put(path, json={"filters": {"min_duration_s": "5"}}, headers=alice))
        mapping = {"server_user": "alice", "user_id": str(ALICE)}
        await keep(await client.post(f"{path}/mappings", json=mapping, headers=alice))
        await keep(await client.delete(f"{path}/mappings/alice", headers=alice))
        await keep(await client.get(BASE, headers=admin(gateway)))
        deleted = await keep(await client.delete(path, headers=alice))
        assert deleted.status == 204
    finally:
        await gateway.client.close()

    logged = caplog.text
    # The captured logs are real: the access log and the route's own lines are in them.
    assert f"{BASE}/{made['id']}/rotate" in logged
    assert f"source {made['id']}" in logged
    everything = later.joined() + "\n" + logged
    assert len(set(secrets)) == 2
    for secret in secrets:
        assert SECRET.fullmatch(secret)
        assert secret not in everything
        assert hashlib.sha256(secret.encode()).hexdigest() not in everything
    assert token not in everything


async def test_answers_of_the_source_routes_match_the_document(gateway: Gateway) -> None:
    alice, root = gateway.auth(ALICE), admin(gateway)
    made = await create(gateway, alice, name="Jellyfin", filters={"anime_libraries": ["Anime"]})
    source = f"{BASE}/{made['id']}"
    missing = f"{BASE}/{uuid.uuid4()}"
    new = {"kind": "plex", "name": "Plex"}
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        ("GET", BASE, BASE, {"headers": alice}),
        ("GET", BASE, f"{BASE}?limit=1", {"headers": root}),
        ("GET", BASE, f"{BASE}?limit=0", {"headers": alice}),
        ("GET", BASE, BASE, {}),
        ("POST", BASE, BASE, {"headers": alice, "json": new}),
        ("POST", BASE, BASE, {"headers": root, "json": {**new, "owner_id": None}}),
        ("POST", BASE, BASE, {"headers": alice, "json": {**new, "owner_id": None}}),
        ("POST", BASE, BASE, {"headers": alice, "json": {**new, "kind": "kodi"}}),
        ("POST", BASE, BASE, {"headers": alice, "data": b"[1"}),
        ("GET", f"{BASE}/{{id}}", source, {"headers": alice}),
        ("GET", f"{BASE}/{{id}}", missing, {"headers": alice}),
        ("PUT", f"{BASE}/{{id}}", source, {"headers": alice, "json": {"name": "J"}}),
        ("PUT", f"{BASE}/{{id}}", source, {"headers": alice, "json": {"name": ""}}),
        ("PUT", f"{BASE}/{{id}}", missing, {"headers": alice, "json": {}}),
        ("POST", f"{BASE}/{{id}}/rotate", f"{source}/rotate", {"headers": alice}),
        ("POST", f"{BASE}/{{id}}/rotate", f"{missing}/rotate", {"headers": alice}),
        (
            "POST",
            f"{BASE}/{{id}}/mappings",
            f"{source}/mappings",
            {"headers": alice, "json": {"server_user": "a", "user_id": str(ALICE)}},
        ),
        (
            "POST",
            f"{BASE}/{{id}}/mappings",
            f"{source}/mappings",
            {"headers": alice, "json": {"server_user": "b", "user_id": str(BOB)}},
        ),
        (
            "POST",
            f"{BASE}/{{id}}/mappings",
            f"{source}/mappings",
            {"headers": alice, "json": {"server_user": ""}},
        ),
        (
            "DELETE",
            f"{BASE}/{{id}}/mappings/{{server_user}}",
            f"{source}/mappings/a",
            {"headers": alice},
        ),
        (
            "DELETE",
            f"{BASE}/{{id}}/mappings/{{server_user}}",
            f"{missing}/mappings/a",
            {"headers": alice},
        ),
        ("DELETE", f"{BASE}/{{id}}", source, {"headers": alice}),
        ("DELETE", f"{BASE}/{{id}}", source, {"headers": alice}),
    ]
    statuses = await answers_as_documented(gateway.client, calls)
    assert {200, 201, 204, 400, 401, 403, 404, 422} <= set(statuses)


# --- generated requests at a real source -------------------------------------------------

RESPONSE_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def fuzz_sources(
    base_url: str,
    headers: dict[str, str],
    user_id: str,
    source_id: str,
    seen: dict[str, set[int]],
) -> list[str]:
    """Generated requests for every source operation, those with an ``{id}`` aimed at a
    real source (but DELETE, which would end the run's target early): hostile names,
    filters and server users reach the database. Blocking: call in a thread."""
    schema = schemathesis.openapi.from_dict(load_document())
    failures: list[str] = []
    seen_bodies: list[None] = []

    def run_one(operation: Any, mode: GenerationMode, examples: int, used: list[Any]) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            aimed = case.operation.path != f"{BASE}/{{id}}" or case.method.upper() != "DELETE"
            if aimed and "id" in (case.path_parameters or {}):
                case.path_parameters = {**case.path_parameters, "id": source_id}
            # Every other mapping onto the caller, so some are taken and some refused.
            body = case.body
            if isinstance(body, dict) and "user_id" in body and len(seen_bodies) % 2 == 0:
                body["user_id"] = user_id
            seen_bodies.append(None)
            response = case.call(base_url=base_url, headers=headers, timeout=15)
            label = f"{case.method.upper()} {case.operation.path}"
            seen.setdefault(label, set()).add(response.status_code)
            case.validate_response(response, checks=used)

        run()

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document does not load: {result.err()}"
        operation = result.ok()
        if not operation.path.startswith(BASE):
            continue
        for mode, examples, used_checks in (
            (GenerationMode.POSITIVE, 40, RESPONSE_CHECKS),
            (GenerationMode.NEGATIVE, 20, [checks.not_a_server_error]),
        ):
            try:
                run_one(operation, mode, examples, used_checks)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.path
            except (Exception, FailureGroup) as exc:
                label = f"{operation.method.upper()} {operation.path} ({mode.value})"
                failures.append(f"{label}: {str(exc)[:1500]}")
    return failures


async def test_generated_requests_at_a_real_source_get_no_5xx(
    unthrottled_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = unthrottled_gateway
    caplog.set_level(logging.WARNING)
    made = await create(gateway, gateway.auth(ALICE), name="fuzzed")
    base_url = str(gateway.client.make_url("/")).rstrip("/")
    seen: dict[str, set[int]] = {}
    # Alice, not an admin: mappings onto generated user ids are refused (403) as documented.
    headers = gateway.auth(ALICE)
    failures = await asyncio.to_thread(
        fuzz_sources, base_url, headers, str(ALICE), made["id"], seen
    )
    assert not failures, "\n\n".join(failures)
    assert 200 in seen[f"PUT {BASE}/{{id}}"]
    assert 200 in seen[f"POST {BASE}/{{id}}/rotate"]
    assert {200, 403} <= seen[f"POST {BASE}/{{id}}/mappings"]
    assert 204 in seen[f"DELETE {BASE}/{{id}}/mappings/{{server_user}}"]
    assert 201 in seen[f"POST {BASE}"]
    assert "unhandled" not in caplog.text
