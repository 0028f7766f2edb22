"""ClientSet: one call per client, callers wait for a free one, the warmest goes first."""

from __future__ import annotations

import asyncio

import pytest

from scrobble_dispatcher.transport import ClientSet


async def test_at_most_size_calls_are_out_and_the_next_waits_for_a_free_client() -> None:
    clients = ClientSet(2)
    try:
        async with clients.one() as first, clients.one() as second:
            assert first is not second
            third = asyncio.create_task(clients.one().__aenter__())
            await asyncio.sleep(0.01)
            assert not third.done()
        assert await asyncio.wait_for(third, 1) in (first, second)
    finally:
        await clients.aclose()


async def test_the_client_freed_last_goes_out_first() -> None:
    clients = ClientSet(3)
    try:
        async with clients.one() as a, clients.one() as b:
            pass  # b is freed first, then a
        async with clients.one() as again:
            assert again is a
        async with clients.one() as warm, clients.one() as next_warm:
            assert (warm, next_warm) == (a, b)
    finally:
        await clients.aclose()


def test_a_set_needs_a_client() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ClientSet(0)
