"""The coalescer on its own: what goes in which batch, errors, sizes, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from scrobble_dispatcher.coalesce import Coalescer


class Recorder:
    """A statement that takes a moment, doubles its items and keeps the batches it saw."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        await asyncio.sleep(0)
        if self.fail_on in items:
            raise OSError(f"statement failed on {self.fail_on}")
        return [item * 2 for item in items]


async def test_an_idle_call_goes_at_once_and_alone() -> None:
    run = Recorder()
    assert await Coalescer(run)(21) == 42
    assert run.batches == [[21]]


async def test_calls_made_while_a_statement_is_out_go_together_next() -> None:
    run = Recorder()
    run.release.clear()
    coalescer = Coalescer(run)
    first = asyncio.create_task(coalescer(1))
    await asyncio.sleep(0)  # the first statement is out, held
    rest = [asyncio.create_task(coalescer(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    run.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [4, 6, 8, 10, 12]
    assert run.batches == [[1], [2, 3, 4, 5, 6]]


async def test_a_failed_statement_fails_each_of_its_calls_and_the_next_batch_goes() -> None:
    run = Recorder(fail_on=3)
    run.release.clear()
    coalescer = Coalescer(run)
    first = asyncio.create_task(coalescer(1))
    await asyncio.sleep(0)
    failing = [asyncio.create_task(coalescer(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    run.release.set()
    assert await first == 2
    for task in failing:
        with pytest.raises(OSError, match="failed on 3"):
            await task
    assert await coalescer(4) == 8
    assert run.batches == [[1], [2, 3], [4]]


async def test_batches_are_cut_at_the_maximum_size() -> None:
    run = Recorder()
    run.release.clear()
    coalescer = Coalescer(run, max_batch=2)
    tasks = [asyncio.create_task(coalescer(n)) for n in range(5)]
    await asyncio.sleep(0)
    run.release.set()
    assert await asyncio.gather(*tasks) == [0, 2, 4, 6, 8]
    assert run.batches == [[0, 1], [2, 3], [4]]


async def test_a_statement_answering_the_wrong_count_fails_its_calls() -> None:
    async def short(items: Sequence[int]) -> list[int]:
        return list(items)[1:]

    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await Coalescer(short)(1)


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    run = Recorder()
    run.release.clear()
    coalescer = Coalescer(run)
    tasks = [asyncio.create_task(coalescer(n)) for n in range(3)]
    await asyncio.sleep(0)
    tasks[0].cancel()
    run.release.set()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert await asyncio.gather(*tasks[1:]) == [2, 4]
    assert run.batches == [[0, 1, 2]]


async def test_a_cancelled_flush_leaves_no_caller_waiting() -> None:
    run = Recorder()
    run.release.clear()
    coalescer = Coalescer(run)
    first = asyncio.create_task(coalescer(1))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(coalescer(2))  # queued behind the batch in flight
    await asyncio.sleep(0)
    flushing = coalescer._flushing
    assert flushing is not None
    flushing.cancel()
    for task in (first, waiting):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
    run.release.set()
    assert await coalescer(3) == 6  # a later call starts afresh
