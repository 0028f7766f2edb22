"""The JWKS cache against a fake provider (httpx.MockTransport) and a clock the test moves:
TTL expiry, refresh ahead of it, at most one unknown-kid refetch per interval, one fetch
for many waiting requests, and failures that keep known keys working and make the rest
JwksUnavailable with a Retry-After."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from scrobble_gateway.jwks import (
    FAILURE_BACKOFF_S,
    MAX_KEY_SET_BYTES,
    JwksCache,
    JwksUnavailable,
)

TTL_S = 300.0
INTERVAL_S = 30.0
URL = "https://idp.example/.well-known/jwks.json"
PUBLIC = json.loads(
    RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Provider:
    """Answers with its kids' keys; ``fail`` makes it raise or answer something else;
    ``hold`` makes every fetch wait until it is set."""

    kids: list[str] = field(default_factory=lambda: ["k1"])
    fail: str | None = None
    hold: asyncio.Event | None = None
    fetches: int = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        assert request.url == URL
        if self.hold is not None:
            await self.hold.wait()
        if self.fail == "connect":
            raise httpx.ConnectError("refused", request=request)
        if self.fail == "status":
            return httpx.Response(503, text="down")
        if self.fail == "garbage":
            return httpx.Response(200, text="<html>login</html>")
        if self.fail == "huge":
            return httpx.Response(200, content=b" " * (MAX_KEY_SET_BYTES + 1))
        keys = [{**PUBLIC, "kid": kid, "alg": "RS256"} for kid in self.kids]
        return httpx.Response(200, json={"keys": keys})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
async def cache(clock: Clock, provider: Provider) -> AsyncIterator[JwksCache]:
    async with JwksCache(
        URL,
        ttl_s=TTL_S,
        refetch_interval_s=INTERVAL_S,
        fetch_timeout_s=0.2,
        transport=httpx.MockTransport(provider),
        clock=clock,
    ) as opened:
        yield opened


async def settle() -> None:
    """Let tasks the cache started in the background run to their end."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_known_key_is_served_from_the_cache(cache: JwksCache, provider: Provider) -> None:
    first = await cache.key("k1")
    assert first is not None
    assert first.algorithm_name == "RS256"
    for _ in range(100):
        assert await cache.key("k1") is first
    assert provider.fetches == 1


async def test_keys_expire_with_the_ttl_so_a_withdrawn_key_stops_working(
    cache: JwksCache, provider: Provider, clock: Clock
) -> None:
    assert await cache.key("k1") is not None
    provider.kids = ["k2"]
    clock.now += TTL_S * 0.5
    assert await cache.key("k1") is not None, "still within the TTL"
    clock.now += TTL_S * 0.5
    assert await cache.key("k1") is None, "the TTL has passed: the current set counts"
    assert provider.fetches == 2
    assert await cache.key("k2") is not None


async def test_a_known_key_past_most_of_the_ttl_refreshes_in_the_background(
    cache: JwksCache, provider: Provider, clock: Clock
) -> None:
    assert await cache.key("k1") is not None
    clock.now += TTL_S * 0.9
    provider.hold = asyncio.Event()
    assert await cache.key("k1") is not None, "answered without waiting for the refresh"
    await settle()
    assert provider.fetches == 2
    provider.hold.set()
    await settle()
    clock.now += TTL_S * 0.5  # past the first fetch's TTL, not the refresh's
    assert await cache.key("k1") is not None
    assert provider.fetches == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(
    cache: JwksCache, provider: Provider, clock: Clock
) -> None:
    assert await cache.key("k1") is not None
    for n in range(50):
        assert await cache.key(f"unknown-{n}") is None
    assert provider.fetches == 2, "the first unknown kid refetched, the others did not"
    provider.kids = ["k1", "k2"]
    clock.now += INTERVAL_S - 1
    assert await cache.key("k2") is None, "too soon for another refetch"
    assert provider.fetches == 2
    clock.now += 1
    assert await cache.key("k2") is not None
    assert provider.fetches == 3


async def test_many_requests_waiting_for_keys_share_one_fetch(
    cache: JwksCache, provider: Provider
) -> None:
    provider.hold = asyncio.Event()
    waiting = [asyncio.create_task(cache.key("k1")) for _ in range(50)]
    await settle()
    assert provider.fetches == 1
    provider.hold.set()
    found = await asyncio.gather(*waiting)
    assert all(key is found[0] and key is not None for key in found)
    assert provider.fetches == 1


async def test_a_known_key_never_waits_for_a_fetch_in_flight(
    cache: JwksCache, provider: Provider
) -> None:
    assert await cache.key("k1") is not None
    provider.hold = asyncio.Event()
    unknown = asyncio.create_task(cache.key("k-new"))
    await settle()
    assert provider.fetches == 2
    assert await cache.key("k1") is not None
    assert not unknown.done()
    provider.hold.set()
    assert await unknown is None


async def test_a_request_that_gives_up_leaves_the_fetch_to_the_others(
    cache: JwksCache, provider: Provider
) -> None:
    provider.hold = asyncio.Event()
    leaving = asyncio.create_task(cache.key("k1"))
    staying = asyncio.create_task(cache.key("k1"))
    await settle()
    leaving.cancel()
    await asyncio.gather(leaving, return_exceptions=True)
    provider.hold.set()
    assert await staying is not None
    assert provider.fetches == 1


@pytest.mark.parametrize("fail", ["connect", "status", "garbage", "huge", "hang"])
async def test_a_failing_provider_keeps_known_keys_and_unknown_kids_are_unavailable(
    cache: JwksCache, provider: Provider, clock: Clock, fail: str
) -> None:
    assert await cache.key("k1") is not None
    if fail == "hang":
        provider.hold = asyncio.Event()  # never set: the fetch timeout ends it
    else:
        provider.fail = fail
    with pytest.raises(JwksUnavailable) as unavailable:
        await cache.key("k-new")
    assert 1 <= unavailable.value.retry_after_s <= FAILURE_BACKOFF_S
    assert await cache.key("k1") is not None, "a cached key keeps working"
    for _ in range(20):
        with pytest.raises(JwksUnavailable):
            await cache.key("k-new")
    assert provider.fetches == 2, "no new attempt before the backoff has passed"
    if provider.hold is not None:
        provider.hold.set()
    provider.fail = None
    provider.hold = None
    clock.now += INTERVAL_S
    assert await cache.key("k-new") is None, "the provider is back: the kid is just unknown"
    assert provider.fetches == 3


async def test_expired_keys_and_a_failing_provider_are_unavailable_until_it_is_back(
    cache: JwksCache, provider: Provider, clock: Clock
) -> None:
    assert await cache.key("k1") is not None
    provider.fail = "connect"
    clock.now += TTL_S
    with pytest.raises(JwksUnavailable) as unavailable:
        await cache.key("k1")
    assert unavailable.value.retry_after_s == FAILURE_BACKOFF_S
    clock.now += 2
    with pytest.raises(JwksUnavailable) as unavailable:
        await cache.key("k1")
    assert unavailable.value.retry_after_s == FAILURE_BACKOFF_S - 2
    provider.fail = None
    clock.now += FAILURE_BACKOFF_S
    assert await cache.key("k1") is not None


async def test_no_fetch_ever_worked_is_unavailable(cache: JwksCache, provider: Provider) -> None:
    provider.fail = "connect"
    with pytest.raises(JwksUnavailable):
        await cache.key("k1")


async def test_closing_cancels_a_fetch_in_flight(clock: Clock) -> None:
    provider = Provider(hold=asyncio.Event())
    cache = JwksCache(
        URL,
        ttl_s=TTL_S,
        refetch_interval_s=INTERVAL_S,
        transport=httpx.MockTransport(provider),
        clock=clock,
    )
    await cache.open()
    waiting = asyncio.create_task(cache.key("k1"))
    await settle()
    await cache.aclose()
    [outcome] = await asyncio.gather(waiting, return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)
