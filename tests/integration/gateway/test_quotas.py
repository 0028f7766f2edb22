"""Per-user quotas of the API (issue 15): a user past their writes a minute gets 429 with
Retry-After and the RateLimit fields, others and their own reads go on, and probes,
metrics, the document and refused tokens are never charged."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.gateway.conftest import Gateway, open_gateway
from tests.support.infra import Infra
from tests.support.topics import Topics

pytestmark = pytest.mark.integration

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
BOB = uuid.UUID("0c8f2a55-1d3e-4b7a-9e21-5a6b7c8d9e10")
API = "/api/v1/scrobble"
WRITES, READS, IMPORTS_A_DAY = 30, 45, 3
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"


@pytest.fixture
async def gateway(infra: Infra, database_url: str, topics: Topics) -> AsyncIterator[Gateway]:
    quotas = {
        "GATEWAY_QUOTA_WRITES_PER_MINUTE": str(WRITES),
        "GATEWAY_QUOTA_READS_PER_MINUTE": str(READS),
        "GATEWAY_MAX_IMPORT_JOBS_PER_DAY": str(IMPORTS_A_DAY),
    }
    started = await open_gateway(infra, database_url, topics, environ_extra=quotas)
    try:
        yield started
    finally:
        await started.client.close()


def fields(answer: Any) -> tuple[list[str], list[str]]:
    return answer.headers.getall("RateLimit-Policy", []), answer.headers.getall("RateLimit", [])


async def test_a_user_past_the_writes_a_minute_gets_429_then_goes_on(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt")
    alice = gateway.auth(ALICE)
    path = f"{API}/connections/{connection}"
    started = time.monotonic()
    for n in range(WRITES):
        answer = await gateway.client.put(path, json={"enabled": True}, headers=alice)
        assert answer.status == 200, await answer.text()
        policy, current = fields(answer)
        assert policy == [f'"writes";q={WRITES};w=60']
        # r counts down; a unit is back within t seconds (2 s at 30 a minute).
        assert current[0].startswith(f'"writes";r={WRITES - 1 - n}'), current
    refused = await gateway.client.put(path, json={"enabled": False}, headers=alice)
    elapsed = time.monotonic() - started
    print(f"\n{WRITES} writes in {elapsed:.2f} s, then {refused.status}")

    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    body = await refused.json()
    assert body["type"] == QUOTA_EXCEEDED
    assert body["violated-policies"] == ["writes"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    assert fields(refused) == ([f'"writes";q={WRITES};w=60'], [f'"writes";r=0;t={retry_after}'])
    rows = await gateway.sql("SELECT enabled FROM connections WHERE id = $1", connection)
    assert rows[0]["enabled"] is True  # the refused write never reached the handler

    # Reads are another bucket; Bob has buckets of his own.
    listed = await gateway.client.get(f"{API}/connections", headers=alice)
    assert listed.status == 200
    assert fields(listed)[1][0].startswith(f'"reads";r={READS - 1}')
    bobs = await gateway.client.put(
        f"{API}/connections/{uuid.uuid4()}", json={}, headers=gateway.auth(BOB)
    )
    assert bobs.status == 404
    assert fields(bobs)[1][0].startswith(f'"writes";r={WRITES - 1}')

    await asyncio.sleep(retry_after)
    again = await gateway.client.put(path, json={"enabled": False}, headers=alice)
    assert again.status == 200, await again.text()


async def test_reads_have_their_own_quota_and_admin_routes_are_charged(gateway: Gateway) -> None:
    admin = gateway.auth(ALICE, "admin")
    statuses = []
    for _ in range(READS + 1):
        answer = await gateway.client.get(f"{API}/admin/dead-letters", headers=admin)
        statuses.append(answer.status)
    assert statuses == [200] * READS + [429]
    assert (await answer.json())["violated-policies"] == ["reads"]
    # Writes are untouched by the reads spent.
    replay = await gateway.client.post(f"{API}/admin/dead-letters/replay", headers=admin)
    assert replay.status == 200
    assert fields(replay)[1][0].startswith(f'"writes";r={WRITES - 1}')


async def test_every_answer_of_a_charged_request_has_the_fields(gateway: Gateway) -> None:
    alice = gateway.auth(ALICE)
    answers = [
        await gateway.client.get(f"{API}/history", params={"limit": "0"}, headers=alice),  # 422
        await gateway.client.get(f"{API}/import/jobs/{uuid.uuid4()}", headers=alice),  # 404
        await gateway.client.post(f"{API}/queue", data=b"[", headers=alice),  # 400
        await gateway.client.delete(f"{API}/connections/nope", headers=alice),  # 404
    ]
    assert [a.status for a in answers] == [422, 404, 400, 404]
    for answer in answers:
        policy, current = fields(answer)
        assert len(policy) == 1, answer.headers
        assert len(current) == 1, answer.headers


async def test_probes_metrics_the_document_and_refused_tokens_are_never_charged(
    gateway: Gateway,
) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"):
        for _ in range(READS + 5):
            answer = await gateway.client.get(path)
            assert answer.status == 200, path
        assert fields(answer) == ([], []), path
    bad_token = {"Authorization": "Bearer not-a-token"}
    for _ in range(WRITES + 5):
        answer = await gateway.client.put(f"{API}/connections/{uuid.uuid4()}", headers=bad_token)
        assert answer.status == 401
        assert fields(answer) == ([], [])
    # A callback is public: bound by its state, not charged.
    callback = await gateway.client.get(f"{API}/trakt/callback", params={"state": "x"})
    assert callback.status < 500
    assert fields(callback) == ([], [])


async def finish_jobs(gateway: Gateway) -> None:
    await gateway.sql(
        "UPDATE import_jobs SET state = 'done', finished_at = now() "
        "WHERE state IN ('queued', 'running')"
    )


async def test_imports_a_day_are_counted_and_a_running_one_is_answered_free(
    gateway: Gateway,
) -> None:
    trakt, lastfm = await gateway.connect(ALICE, "trakt"), await gateway.connect(ALICE, "lastfm")
    alice = gateway.auth(ALICE)

    async def start(service: str) -> Any:
        return await gateway.client.post(f"{API}/import/{service}", headers=alice)

    assert (await start("trakt")).status == 202
    assert (await start("trakt")).status == 200  # the job that runs: not a new start
    await finish_jobs(gateway)
    assert (await start("trakt")).status == 202
    await finish_jobs(gateway)
    assert (await start("lastfm")).status == 202  # the third of the day, left running

    refused = await start("trakt")
    assert refused.status == 429
    body = await refused.json()
    assert body["type"] == QUOTA_EXCEEDED
    assert body["violated-policies"] == ["imports"]
    retry_after = int(refused.headers["Retry-After"])
    assert 86_000 < retry_after <= 86_400
    policies, current = fields(refused)
    assert f'"imports";q={IMPORTS_A_DAY};w=86400' in policies
    assert f'"imports";r=0;t={retry_after}' in current
    assert any(c.startswith('"writes";') for c in current)  # the minute's quota as well
    jobs = await gateway.sql("SELECT connection_id FROM import_jobs ORDER BY created_at")
    assert [j["connection_id"] for j in jobs] == [trakt, trakt, lastfm]
    assert (await start("lastfm")).status == 200  # still answered: it runs

    # The oldest of the three turns a day old in 10 s: that is the wait.
    await gateway.sql(
        "UPDATE import_jobs SET created_at = now() - interval '1 day' + interval '10 seconds' "
        "WHERE created_at = (SELECT min(created_at) FROM import_jobs)"
    )
    later = await start("trakt")
    assert later.status == 429
    assert 9 <= int(later.headers["Retry-After"]) <= 11
    await gateway.sql(
        "UPDATE import_jobs SET created_at = now() - interval '25 hours' "
        "WHERE created_at = (SELECT min(created_at) FROM import_jobs)"
    )
    assert (await start("trakt")).status == 202

    # Bob's day is his own.
    await gateway.connect(BOB, "trakt")
    bobs = await gateway.client.post(f"{API}/import/trakt", headers=gateway.auth(BOB))
    assert bobs.status == 202


async def test_imports_started_at_once_never_pass_the_day_s_count(gateway: Gateway) -> None:
    services = ("trakt", "lastfm", "listenbrainz", "simkl", "anilist")
    for service in services:
        await gateway.connect(ALICE, service)
    alice = gateway.auth(ALICE)
    answers = await asyncio.gather(
        *(gateway.client.post(f"{API}/import/{s}", headers=alice) for s in services)
    )
    statuses = sorted(a.status for a in answers)
    assert statuses == [202] * IMPORTS_A_DAY + [429] * (len(services) - IMPORTS_A_DAY)
    rows = await gateway.sql("SELECT count(*) AS n FROM import_jobs WHERE user_id = $1", ALICE)
    assert rows[0]["n"] == IMPORTS_A_DAY
