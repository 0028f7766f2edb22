"""The import routes as a user sees them: one job per connection at a time, its message on
the imports topic, progress readable by its owner only (another user's id is a 404)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.imports.support import USER, ImportSetup
from tests.support.kafka import collect

pytestmark = pytest.mark.integration


async def test_start_list_and_read_jobs(imports: ImportSetup) -> None:
    client, gw = imports.gateway.client, imports.gateway
    connection = await imports.connect("trakt")
    job = await imports.start("trakt")
    assert (job["state"], job["connection_id"], job["since"]) == ("queued", str(connection), None)
    again = await client.post("/api/v1/scrobble/import/trakt", headers=gw.auth(USER))
    assert again.status == 200
    assert (await again.json())["id"] == job["id"]

    [message] = await collect(
        imports.env["KAFKA_BOOTSTRAP_SERVERS"],
        [imports.env["SCROBBLE_TOPIC_PREFIX"] + "imports"],
        1,
    )
    assert message.key == str(connection).encode()
    assert message.json()["job_id"] == job["id"]

    listed = await client.get("/api/v1/scrobble/import/jobs", headers=gw.auth(USER))
    assert [j["id"] for j in (await listed.json())["items"]] == [job["id"]]
    by_connection = await client.get(
        f"/api/v1/scrobble/import/jobs?connection_id={connection}", headers=gw.auth(USER)
    )
    assert len((await by_connection.json())["items"]) == 1

    stranger = uuid.uuid4()
    theirs = await client.get(
        f"/api/v1/scrobble/import/jobs/{job['id']}", headers=gw.auth(stranger)
    )
    assert theirs.status == 404
    missing = await client.get(
        f"/api/v1/scrobble/import/jobs/{uuid.uuid4()}", headers=gw.auth(USER)
    )
    assert missing.status == 404
    filtered = await client.get(
        f"/api/v1/scrobble/import/jobs?connection_id={connection}", headers=gw.auth(stranger)
    )
    assert filtered.status == 404
    none_listed = await client.get("/api/v1/scrobble/import/jobs", headers=gw.auth(stranger))
    assert (await none_listed.json())["items"] == []
    no_connection = await client.post("/api/v1/scrobble/import/simkl", headers=gw.auth(USER))
    assert no_connection.status == 404
    unknown = await client.post("/api/v1/scrobble/import/myspace", headers=gw.auth(USER))
    assert unknown.status == 404
    bad_body = await client.post(
        "/api/v1/scrobble/import/trakt", json={"full": "yes"}, headers=gw.auth(USER)
    )
    assert bad_body.status == 422
