"""The chaos harness stops cleanly on SIGTERM: its work is cancelled and its clean-up runs
(before, SIGTERM ended the harness alone and left its services and its private Kafka and
Postgres running)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bench.chaos.__main__ import Stopped, stoppable


def test_sigterm_cancels_the_run_and_its_clean_up_runs() -> None:
    cleaned: list[str] = []

    async def run() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)  # clean-up may still await after the cancel
            cleaned.append("torn down")

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        await stoppable(run())

    with pytest.raises(Stopped):
        asyncio.run(main())
    assert cleaned == ["torn down"]
    # The loop is closed: SIGTERM's default action is back for the rest of the process.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
