"""The retry poller goes on when a round is cut short by a future cancelled under it (a
connection lost mid-call), and stops only when it is itself cancelled. A chaos run found
every poller of both dispatchers gone after a Postgres kill -9, rows due and none taken."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from scrobble_dispatcher import consumer
from scrobble_dispatcher.errors import is_transient


def _cancelled_under_the_caller() -> asyncio.Future[None]:
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(waiter.cancel)
    return waiter


async def _poll_until_the_last_round(
    monkeypatch: pytest.MonkeyPatch, first_rounds: list[Callable[[], Awaitable[None]]]
) -> None:
    """Run one service's poller whose rounds do ``first_rounds`` in turn, then one more;
    the poller must reach that one and go on until it is cancelled, then stop."""
    last = asyncio.Event()

    async def round_(*_: Any) -> int:
        if first_rounds:
            await first_rounds.pop(0)()
        last.set()
        return 0

    monkeypatch.setattr(consumer, "poll_round", round_)
    monkeypatch.setattr(consumer, "POLL_INTERVAL_S", 0.01)
    poller = asyncio.create_task(consumer.poll_service(None, None, "trakt"))  # type: ignore[arg-type]
    await asyncio.wait_for(last.wait(), timeout=5)
    assert not poller.done()
    poller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poller  # cancelled itself, it stops


async def test_a_round_cancelled_under_the_poller_is_followed_by_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def cut() -> None:
        await _cancelled_under_the_caller()

    await _poll_until_the_last_round(monkeypatch, [cut])


async def test_a_delivery_cancelled_under_a_round_does_not_end_it() -> None:
    delivered: list[str] = []

    async def cut() -> None:
        await _cancelled_under_the_caller()

    async def fine() -> None:
        delivered.append("other connection")

    await consumer._all_of([cut(), fine()])  # the rule under test
    assert delivered == ["other connection"]


async def test_a_round_that_raises_is_logged_and_followed_by_the_next(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def connection_left_mid_operation() -> None:
        raise asyncpg.InternalClientError("cannot switch to state 12")

    async def bug() -> None:
        raise RuntimeError("a bug of one round")

    await _poll_until_the_last_round(monkeypatch, [connection_left_mid_operation, bug])
    assert any("a bug of one round" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_a_connection_left_mid_operation_is_transient() -> None:
    # Seen after a Postgres kill -9: it made a Trakt scrobble dead instead of retried.
    assert is_transient(asyncpg.InternalClientError("cannot switch to state 12"))
