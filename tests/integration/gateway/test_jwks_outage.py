"""A JWKS that fails safely: when the identity provider is down, slow or answers garbage, a
token whose key the gateway cannot get is a 503 with Retry-After ("can't check tokens now"),
not a 401 and not a 500; tokens with keys already cached keep working and never wait for
the provider; and fifty requests with an unknown kid at once make one fetch, not fifty.

Each test prints its figures (answer times, fetches the provider saw)."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.gateway.identity_provider import (
    IdentityProvider,
    Mode,
    client,
    identity_provider,
    jwks_gateway,
    rsa_key,
    signed_token,
)
from tests.support.infra import Infra
from tests.support.topics import Topics

pytestmark = pytest.mark.integration
__all__ = ["client"]  # the fixture, shared by the JWKS test modules
USER = uuid.UUID("8c0e3f7a-2d51-4b9e-a6c4-1f2e3d4c5b6a")
CONNECTIONS = "/api/v1/scrobble/connections"
CONCURRENT = 50


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_cannot_check_tokens_now(answer: Any, why: str) -> None:
    assert answer.status == 503, f"{why}: {answer.status} {await answer.text()}"
    assert answer.content_type == "application/problem+json", why
    assert int(answer.headers["Retry-After"]) >= 1, why
    body = await answer.json()
    assert body["status"] == 503, why
    assert body["detail"] == "can't check tokens now", why
    assert "WWW-Authenticate" not in answer.headers, why


@pytest.fixture
async def provider() -> AsyncIterator[IdentityProvider]:
    async with identity_provider() as started:
        started.publish("k1")
        yield started


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/.well-known/jwks.json"


async def test_a_provider_that_cannot_be_reached_is_503_with_retry_after(
    infra: Infra, database_url: str, topics: Topics
) -> None:
    async with jwks_gateway(infra, database_url, topics, closed_port_url()) as client:
        token = signed_token(rsa_key(), "k1", USER)
        answer = await client.get(CONNECTIONS, headers=bearer(token))
        await assert_cannot_check_tokens_now(answer, "nothing listens at the JWKS URL")
        print(f"\nunreachable JWKS: {answer.status}, Retry-After {answer.headers['Retry-After']}")


@pytest.mark.parametrize("mode", ["error", "garbage"])
async def test_a_failing_provider_keeps_known_keys_working_and_unknown_kids_are_503(
    client: TestClient[Any, Any], provider: IdentityProvider, mode: Mode
) -> None:
    known = provider.token("k1", USER)
    assert (await client.get(CONNECTIONS, headers=bearer(known))).status == 200
    provider.mode = mode
    unknown = provider.token("k-new", USER, key=rsa_key())
    answer = await client.get(CONNECTIONS, headers=bearer(unknown))
    await assert_cannot_check_tokens_now(answer, f"unknown kid, provider answers {mode}")
    again = await client.get(CONNECTIONS, headers=bearer(known))
    assert again.status == 200, "a cached key keeps working while the provider fails"
    # The provider is not asked again for every unknown kid while it fails.
    for _ in range(10):
        answer = await client.get(CONNECTIONS, headers=bearer(unknown))
        await assert_cannot_check_tokens_now(answer, f"again, provider answers {mode}")
    print(f"\nprovider answering {mode}: {provider.fetches} fetch(es) for 11 unknown-kid requests")
    assert provider.fetches == 2


async def test_a_hung_provider_is_503_after_the_fetch_timeout_and_blocks_no_known_key(
    client: TestClient[Any, Any], provider: IdentityProvider
) -> None:
    known = provider.token("k1", USER)
    assert (await client.get(CONNECTIONS, headers=bearer(known))).status == 200
    provider.mode = "hold"
    started = time.monotonic()
    waiting = asyncio.create_task(
        client.get(CONNECTIONS, headers=bearer(provider.token("k-new", USER, key=rsa_key())))
    )
    try:
        await asyncio.wait_for(provider.holding.wait(), timeout=10)
        assert provider.fetches == 2, "the unknown kid made the gateway ask the provider"
        # While that fetch hangs, a request with a cached key is answered.
        known_started = time.monotonic()
        for _ in range(5):
            assert (await client.get(CONNECTIONS, headers=bearer(known))).status == 200
        assert not waiting.done(), "the unknown-kid request is still waiting for the provider"
        known_took = time.monotonic() - known_started
        answer = await asyncio.wait_for(waiting, timeout=30)
    finally:
        provider.released.set()
    await assert_cannot_check_tokens_now(answer, "provider hangs")
    print(
        f"\nhung provider: 5 known-key requests answered in {known_took * 1000:.0f} ms "
        f"while the fetch hung; the unknown kid got 503 after {time.monotonic() - started:.2f} s"
    )


async def test_expired_keys_and_a_failing_provider_are_503_not_the_old_keys(
    infra: Infra, database_url: str, topics: Topics, provider: IdentityProvider
) -> None:
    async with jwks_gateway(
        infra, database_url, topics, provider.url, GATEWAY_JWKS_CACHE_TTL="1s"
    ) as client:
        known = provider.token("k1", USER)
        assert (await client.get(CONNECTIONS, headers=bearer(known))).status == 200
        provider.mode = "error"
        failed_at = time.monotonic()
        statuses: list[int] = []
        answer = None
        while time.monotonic() < failed_at + 15:
            answer = await client.get(CONNECTIONS, headers=bearer(known))
            statuses.append(answer.status)
            if answer.status != 200:
                break
            await asyncio.sleep(0.05)
        assert answer is not None
        await assert_cannot_check_tokens_now(answer, "keys expired, provider failing")
        print(
            f"\nexpired cache, failing provider: 503 after {time.monotonic() - failed_at:.2f} s "
            f"(TTL 1 s), {provider.fetches} fetch(es)"
        )
        assert set(statuses[:-1]) <= {200}


def percentile(samples: list[float], share: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[share - 1]


async def timed(client: TestClient[Any, Any], token: str) -> tuple[int, float]:
    started = time.perf_counter()
    answer = await client.get(CONNECTIONS, headers=bearer(token))
    await answer.read()
    return answer.status, time.perf_counter() - started


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("ok", 200), ("error", 503), ("garbage", 503), ("hold", 503)],
)
async def test_fifty_concurrent_unknown_kids_make_one_fetch(
    client: TestClient[Any, Any], provider: IdentityProvider, mode: Mode, expected: int
) -> None:
    """``ok``: a rotated key (new kid, already published); else the provider fails. Every
    answer is timed at the client; ``hold`` fails only by the gateway's fetch timeout."""
    known = provider.token("k1", USER)
    assert (await client.get(CONNECTIONS, headers=bearer(known))).status == 200
    # For comparison: the same requests with a cached key (the route itself, the database).
    baseline = await asyncio.gather(*(timed(client, known) for _ in range(CONCURRENT)))
    assert {status for status, _ in baseline} == {200}
    base_times = [seconds for _, seconds in baseline]
    before = provider.fetches
    provider.publish("k2")
    provider.mode = mode
    provider.delay_s = 0.1  # every answer takes a while, so the requests overlap
    tokens = [provider.token("k2", USER) for _ in range(CONCURRENT)]
    try:
        results = await asyncio.gather(*(timed(client, token) for token in tokens))
        # A known key is still answered at once (the set was fetched just now).
        provider.delay_s = 0.0
        known_status, known_s = await timed(client, known)
    finally:
        provider.released.set()
    times = [seconds for _, seconds in results]
    statuses = sorted({status for status, _ in results})
    fetches = provider.fetches - before
    print(
        f"\n{CONCURRENT} concurrent unknown-kid requests, provider {mode!r}: "
        f"status {statuses}, p50 {percentile(times, 50) * 1000:.0f} ms, "
        f"p99 {percentile(times, 99) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
        f"JWKS fetches the provider saw: {fetches}; a known-key request after: "
        f"{known_status} in {known_s * 1000:.0f} ms (provider delay 100 ms; {CONCURRENT} "
        f"concurrent known-key requests: p50 {percentile(base_times, 50) * 1000:.0f} ms, "
        f"p99 {percentile(base_times, 99) * 1000:.0f} ms)"
    )
    assert statuses == [expected]
    assert fetches == 1
    assert known_status == 200
