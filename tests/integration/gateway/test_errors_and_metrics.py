"""Errors are problem+json, never a stack trace; metrics are labelled by route template."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from scrobble_shared import logs
from tests.integration.gateway.conftest import Gateway, open_gateway
from tests.support.infra import Infra
from tests.support.topics import Topics

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
BROKEN = "/api/v1/scrobble/broken"
SECRET_IN_ERROR = "token=sk-live-do-not-log-me"


def add_broken_route(app: web.Application) -> None:
    async def broken(_: web.Request) -> web.Response:
        raise RuntimeError(f"upstream said no ({SECRET_IN_ERROR})")

    app.router.add_get(BROKEN, broken)


@pytest.fixture
async def broken_gateway(infra: Infra, database_url: str, topics: Topics) -> AsyncIterator[Gateway]:
    started = await open_gateway(infra, database_url, topics, add_broken_route)
    try:
        yield started
    finally:
        await started.client.close()


async def test_an_unexpected_error_is_a_500_problem_logged_without_its_message(
    broken_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await broken_gateway.client.get(BROKEN, headers=broken_gateway.auth(ALICE))
    assert answer.status == 500
    assert answer.content_type == "application/problem+json"
    body = await answer.json()
    assert body == {"type": "about:blank", "title": "Internal Server Error", "status": 500}
    assert "RuntimeError" in caplog.text
    assert "broken" in caplog.text  # the frame: where it happened
    assert SECRET_IN_ERROR not in caplog.text


async def test_unknown_paths_and_methods_are_problems(gateway: Gateway) -> None:
    missing = await gateway.client.get("/api/v1/scrobble/nothing/here/at/all")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    assert (await missing.json())["status"] == 404

    connection = await gateway.connect(ALICE, "trakt")
    wrong_method = await gateway.client.patch(
        f"/api/v1/scrobble/connections/{connection}", json={}, headers=gateway.auth(ALICE)
    )
    assert wrong_method.status == 405
    assert wrong_method.content_type == "application/problem+json"
    assert set(wrong_method.headers["Allow"].split(",")) == {"PUT", "DELETE"}


async def test_too_large_a_body_is_a_413_problem(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt")
    answer = await gateway.client.put(
        f"/api/v1/scrobble/connections/{connection}",
        data=b'{"enabled": true, "x": "' + b"a" * 100_000 + b'"}',
        headers={**gateway.auth(ALICE), "Content-Type": "application/json"},
    )
    assert answer.status == 413
    assert answer.content_type == "application/problem+json"


def sample(metrics: str, name: str, labels: dict[str, str]) -> float:
    """The sample's value; 0 when the series does not exist yet."""
    for line in metrics.splitlines():
        matched = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if matched and dict(re.findall(r'(\w+)="([^"]*)"', matched[1])) == labels:
            return float(matched[2])
    return 0.0


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    gateway: Gateway,
) -> None:
    # The registry belongs to the process, so other tests count too: compare before/after.
    template = "/api/v1/scrobble/connections/{id}"
    put_404 = (
        "scrobble_gateway_requests_total",
        {"route": template, "method": "PUT", "status": "404"},
    )
    list_401 = (
        "scrobble_gateway_requests_total",
        {"route": "/api/v1/scrobble/connections", "method": "GET", "status": "401"},
    )
    put_count = (
        "scrobble_gateway_request_duration_seconds_count",
        {"route": template, "method": "PUT"},
    )
    before = await gateway.client.get("/metrics")
    start = {
        name: sample(await before.text(), *key)
        for name, key in (("put_404", put_404), ("list_401", list_401), ("put_count", put_count))
    }

    connection = await gateway.connect(ALICE, "trakt")
    alice = gateway.auth(ALICE)
    for _ in range(3):
        await gateway.client.put(
            f"/api/v1/scrobble/connections/{uuid.uuid4()}", json={}, headers=alice
        )
    await gateway.client.put(f"/api/v1/scrobble/connections/{connection}", json={}, headers=alice)
    await gateway.client.get("/api/v1/scrobble/connections")

    text = await (await gateway.client.get("/metrics")).text()
    assert sample(text, *put_404) == start["put_404"] + 3
    assert sample(text, *list_401) == start["list_401"] + 1
    assert sample(text, *put_count) == start["put_count"] + 4
    gateway_lines = [line for line in text.splitlines() if line.startswith("scrobble_gateway_")]
    uuid_text = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert not [line for line in gateway_lines if uuid_text.search(line)]


async def test_every_answer_has_a_request_id_that_its_log_lines_carry(
    broken_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    given = "req-from-proxy-0001"
    answer = await broken_gateway.client.get(
        BROKEN, headers={**broken_gateway.auth(ALICE), "X-Request-Id": given}
    )
    assert answer.status == 500
    assert answer.headers["X-Request-Id"] == given
    formatter = logs.JsonFormatter()
    failure = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failure, caplog.text
    # The id is bound while the request is handled: the error line carries it.
    assert all(json.loads(formatter.format(r)).get("request_id") == given for r in failure)

    made = await broken_gateway.client.get(
        "/api/v1/scrobble/nothing", headers={"X-Request-Id": 'bad id; {"level": "forged"}'}
    )
    assert made.status in (401, 404)
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
