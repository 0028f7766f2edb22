"""The system's processes as the harness runs them: each one a ``scrobble <service>`` (or
the import worker, the sandbox, the proxy) with its own environment, log and readiness URL,
started in a session of its own, killed with ``SIGKILL`` and started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

SCROBBLE: Final = str(Path(sys.executable).with_name("scrobble"))


class ProcessError(Exception):
    """A process did not become ready; the message names its log."""


@dataclass
class Service:
    """One process kind; ``proc`` is the running incarnation, ``starts`` counts them."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_url: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    started_at: float = 0.0
    kills: list[float] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None or self.proc.poll() is not None else self.proc.pid

    def spawn(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts + 1} at {time.ctime()} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                list(self.argv),
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.started_at = time.monotonic()

    async def start(self, timeout_s: float = 120) -> float:
        """Spawn and wait until ready; returns the seconds it took."""
        began = time.monotonic()
        self.spawn()
        await self.wait_ready(timeout_s)
        return time.monotonic() - began

    async def wait_ready(self, timeout_s: float) -> None:
        until = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=3) as client:
            while time.monotonic() < until:
                if self.proc is None or self.proc.poll() is not None:
                    raise ProcessError(f"{self.name} exited during start-up; see {self.log}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.ready_url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise ProcessError(f"{self.name} not ready within {timeout_s:.0f} s; see {self.log}")

    def kill(self) -> bool:
        """SIGKILL, then reap; False when it was not running."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills.append(time.monotonic())
        return True

    async def stop(self, grace_s: float = 20) -> None:
        """SIGTERM, SIGKILL after the grace time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), grace_s)
        except TimeoutError:
            self.kill()

    def rss_mb(self) -> float | None:
        return None if self.pid is None else rss_mb(self.pid)

    def open_fds(self) -> int | None:
        return None if self.pid is None else open_fds(self.pid)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def scrobble(command: str, *args: str) -> list[str]:
    return [SCROBBLE, command, *args]


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
