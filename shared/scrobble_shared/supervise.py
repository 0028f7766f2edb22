"""One supervisor for the background loops of a process: the silence sweeper, the due-work
poller, the queue gauges, the outbox recovery, a cache's LISTEN connection, the import
sweeper. Nothing dies silently:

- a loop that raises is logged with its name and the traceback, counted
  (``scrobble_background_failures_total{loop}``), and started again after a pause that
  doubles from ``first_backoff_s`` to ``max_backoff_s`` (and starts over once the loop has
  run ``healthy_after_s`` without failing);
- a loop that returns by itself ended when it should not have: logged, counted, started
  again the same way;
- a loop that raises ``CancelledError`` while nobody is stopping it (a future it awaited
  was cancelled under it, by a library or a task of its own) failed too: logged, counted,
  started again. Only :meth:`Supervisor.stop` ends a loop (a chaos run found the due-work
  poller of both dispatchers gone this way after a Postgres kill -9, with no log line and
  2,000 rows due);
- :meth:`Supervisor.stop` cancels every loop and waits for them; anything one raised on
  the way out is logged, never dropped.

A loop is a coroutine function taking no arguments that runs until cancelled. Loops keep
their own handling of what they expect (Postgres away: log and try again next round); the
supervisor is for what they did not expect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from prometheus_client import Counter

log = logging.getLogger(__name__)

LOOP_FAILURES: Final = Counter(
    "scrobble_background_failures_total",
    "Background loops that raised or ended and were started again, by loop",
    ["loop"],
)

Loop = Callable[[], Awaitable[None]]


def being_cancelled() -> bool:
    """Whether the current task was asked to stop (``task.cancel()``), as opposed to a
    ``CancelledError`` from a future cancelled under it, which is a failure to handle."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Supervisor:
    """Starts loops, restarts them when they fail, stops them all (module docstring)."""

    def __init__(
        self,
        *,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        healthy_after_s: float = 60.0,
    ) -> None:
        self._first = first_backoff_s
        self._max = max_backoff_s
        self._healthy_after = healthy_after_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Only stop() ends a loop. Not task.cancelling(): Python 3.11's TaskGroup leaves its
        # parent task's cancel request counted after a child failed (the chaos run lost the
        # due-work poller that way: its ExceptionGroup looked like "being stopped").
        self._stopping = False

    @property
    def running(self) -> list[str]:
        return [name for name, task in self._tasks.items() if not task.done()]

    def start(self, name: str, loop: Loop) -> None:
        """Run ``loop`` under ``name`` (unique in this supervisor) until :meth:`stop`."""
        if name in self._tasks:
            raise ValueError(f"a loop named {name!r} is supervised already")
        self._tasks[name] = asyncio.create_task(self._keep(name, loop), name=name)

    async def _keep(self, name: str, loop: Loop) -> None:
        backoff = self._first
        while True:
            started = time.monotonic()
            try:
                await loop()
            except asyncio.CancelledError:
                if self._stopping:
                    raise  # stop(): the one way a loop ends
                log.error("background loop %s was cancelled from inside; starting it again", name)
            except Exception:
                if self._stopping:
                    raise  # it failed on its way out: stop() logs it; no new start
                log.exception("background loop %s failed; starting it again", name)
            else:
                log.error("background loop %s ended by itself; starting it again", name)
            LOOP_FAILURES.labels(name).inc()
            if time.monotonic() - started >= self._healthy_after:
                backoff = self._first
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max)

    async def stop(self) -> None:
        """Cancel every loop and wait for them; log what any raised on the way out."""
        self._stopping = True
        tasks = list(self._tasks.items())
        self._tasks.clear()
        for _, task in tasks:
            task.cancel()
        results = await asyncio.gather(*(t for _, t in tasks), return_exceptions=True)
        for (name, _), result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("background loop %s raised while stopping", name, exc_info=result)
