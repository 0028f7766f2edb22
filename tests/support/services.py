"""Running a service the way an operator does: ``scrobble <service>`` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
# A service's start is bound by importing its libraries (about 3.5 s of CPU); on a two-core
# machine busy with other runs that took 30 s of wall time. A bound, not a figure: a
# service that exits is reported at once, one that hangs after this long.
READY_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServiceProcess:
    """One ``scrobble <name>`` process with its own environment and metrics port."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.metrics_port = free_port()
        self.env = {**os.environ, **env, "METRICS_PORT": str(self.metrics_port)}
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            SCROBBLE, self.name, env=self.env, stdout=log, stderr=log
        )
        log.close()
        await self.wait_ready(ready_timeout_s)

    async def wait_ready(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout_s
        async with httpx.AsyncClient() as client:
            while loop.time() < until:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise AssertionError(f"{self.name} exited early:\n{self.log_tail()}")
                try:
                    answer = await client.get(f"http://127.0.0.1:{self.metrics_port}/readyz")
                    if answer.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready in {timeout_s} s:\n{self.log_tail()}")

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
            return answer.text

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc and self.proc.returncode is not None else 0
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        return code

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def run_cli(*args: str, env: dict[str, str]) -> str:
    """``scrobble <args>`` with ``env`` added to this environment; it must exit 0. Its
    standard output."""
    proc = await asyncio.create_subprocess_exec(
        SCROBBLE,
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()
