"""The supervisor of background loops: a failing loop is logged, counted and started again;
stopping waits for every loop and drops nothing it raised."""

from __future__ import annotations

import asyncio
import logging

import pytest

from scrobble_shared.supervise import LOOP_FAILURES, Supervisor


def failures(name: str) -> float:
    return float(LOOP_FAILURES.labels(name)._value.get())


async def test_a_loop_that_raises_is_logged_counted_and_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0
    again = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"bad round {runs}")
        again.set()
        await asyncio.Event().wait()  # the third run goes on until stopped

    before = failures("flaky")
    supervisor = Supervisor(first_backoff_s=0.01, max_backoff_s=0.02)
    with caplog.at_level(logging.ERROR, logger="scrobble_shared.supervise"):
        supervisor.start("flaky", flaky)
        await asyncio.wait_for(again.wait(), timeout=5)
        assert supervisor.running == ["flaky"]
        await supervisor.stop()
    assert runs == 3
    assert failures("flaky") - before == 2
    failed = [r for r in caplog.records if "flaky failed" in r.getMessage()]
    assert len(failed) == 2
    assert all(r.exc_info is not None for r in failed)  # the traceback is in the log
    assert supervisor.running == []


async def test_a_loop_that_ends_by_itself_is_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0
    twice = asyncio.Event()

    async def ends() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            twice.set()

    supervisor = Supervisor(first_backoff_s=0.01)
    with caplog.at_level(logging.ERROR, logger="scrobble_shared.supervise"):
        supervisor.start("ends", ends)
        await asyncio.wait_for(twice.wait(), timeout=5)
        await supervisor.stop()
    assert any("ends ended by itself" in r.getMessage() for r in caplog.records)


async def test_stop_logs_what_a_loop_raised_on_its_way_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("could not close cleanly")

    supervisor = Supervisor()
    with caplog.at_level(logging.ERROR, logger="scrobble_shared.supervise"):
        supervisor.start("stubborn", stubborn)
        await started.wait()
        await supervisor.stop()
    assert any("stubborn raised while stopping" in r.getMessage() for r in caplog.records)


async def forever() -> None:
    await asyncio.Event().wait()


async def test_one_name_one_loop() -> None:
    supervisor = Supervisor()
    supervisor.start("x", forever)
    with pytest.raises(ValueError, match="x"):
        supervisor.start("x", forever)
    await supervisor.stop()


async def test_a_loop_cancelled_from_inside_is_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A future the loop awaits is cancelled under it (asyncpg, a gather of its own): the
    # loop's task raises CancelledError though nobody called stop(). Before, that ended the
    # loop for good, silently.
    runs = 0
    again = asyncio.Event()

    async def undercut() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(waiter.cancel)
            await waiter
        again.set()
        await asyncio.Event().wait()

    before = failures("undercut")
    supervisor = Supervisor(first_backoff_s=0.01)
    with caplog.at_level(logging.ERROR, logger="scrobble_shared.supervise"):
        supervisor.start("undercut", undercut)
        await asyncio.wait_for(again.wait(), timeout=5)
        assert supervisor.running == ["undercut"]
        await supervisor.stop()
    assert runs == 2
    assert failures("undercut") - before == 1
    assert any("undercut was cancelled from inside" in r.getMessage() for r in caplog.records)
    assert supervisor.running == []


async def test_a_loop_whose_task_group_failed_is_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Python 3.11's TaskGroup cancels its parent task when a child fails and, when that
    # happens after the body ended, leaves the cancel request counted: the ExceptionGroup
    # then looked like "being stopped" and the loop ended silently (the due-work poller).
    runs = 0
    again = asyncio.Event()

    async def child_fails() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("one service's round")

    async def grouped() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            async with asyncio.TaskGroup() as group:
                group.create_task(child_fails())
        again.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(first_backoff_s=0.01)
    with caplog.at_level(logging.ERROR, logger="scrobble_shared.supervise"):
        supervisor.start("grouped", grouped)
        await asyncio.wait_for(again.wait(), timeout=5)
        await supervisor.stop()
    assert runs == 2
    assert any("grouped failed" in r.getMessage() for r in caplog.records)
