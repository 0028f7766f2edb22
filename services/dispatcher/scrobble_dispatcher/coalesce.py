"""Group commit for statements many deliveries run at once: a call made while the previous
statement is out waits for it and goes in the next one, together with every other call
made meanwhile. Idle, a call goes at once (no added latency); under load, one round trip
carries the work of many deliveries.

(Not a DataLoader, e.g. aiodataloader: that one batches what is asked within one turn of
the event loop and then goes; here the batch is whatever piled up while the database was
busy, which is what grows with the load.)

Failure policy: when a statement fails, every call it carried raises that error (one
bad item fails its whole batch: callers treat it as they would their own failure, and
the statements here take only values the code made); the next batch is tried afresh. A
call whose caller is cancelled still goes with its batch (the statement may already be
out); only the answer is dropped. If the flushing task itself is cancelled (shutdown),
every call it carried or still had waiting gets that cancellation, so none waits forever.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# A batch of at most this many: one statement stays short however deep the pile.
MAX_BATCH = 500


class Coalescer(Generic[Item, Result]):
    """``await coalescer(item)``: ``run`` on the batch ``item`` went in, its answer for
    ``item``. ``run`` gets the batch's items in call order and answers one result each."""

    def __init__(
        self,
        run: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, answer))
        if self._flushing is None:
            # A context of its own: the first caller's bound log ids are not the batch's.
            self._flushing = asyncio.create_task(self._flush(), context=contextvars.Context())
        return await answer  # cancelled, the caller's future is dropped; the batch goes

    async def _flush(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    results = await self._run([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} items")
                except Exception as exc:  # every caller of the batch gets the error
                    _settle(batch, exc)
                    continue
                for (_, answer), result in zip(batch, results, strict=True):
                    if not answer.done():
                        answer.set_result(result)
        except BaseException as exc:  # cancelled (or worse): nobody is left waiting
            waiting, self._pending = batch + self._pending, []
            _settle(waiting, exc)
            raise
        finally:
            self._flushing = None


def _settle(calls: list[tuple[Item, asyncio.Future[Result]]], exc: BaseException) -> None:
    for _, answer in calls:
        if answer.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            answer.cancel()
        else:
            answer.set_exception(exc)
