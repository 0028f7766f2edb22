"""The harness's own Kafka broker and Postgres server, which it kills on purpose.

They come from ``deploy/local/infra.sh`` with a state directory and ports of their own
(``SCROBBLE_LOCAL_DIR``, ``SCROBBLE_KAFKA_PORT``, ``SCROBBLE_PG_PORT``), never the shared
ones on 9092 and 5432. The broker advertises the port of the harness's TCP proxy
(``SCROBBLE_KAFKA_ADVERTISED_PORT``), so every client connection, after bootstrap too, goes
through the proxy. A kill is ``SIGKILL`` to the broker, or to the postmaster and every
process it started (a crash: Postgres recovers from its WAL at the next start); ``up``
brings back whatever is down, as an operator would after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
INFRA_SCRIPT: Final = REPO / "deploy" / "local" / "infra.sh"
SHARED_PORTS: Final = frozenset({9092, 9093, 5432})


class InfraError(Exception):
    """The private broker or database could not be started; the message says where to look."""


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class InfraPorts:
    kafka: int  # the broker's listener; the controller listens on kafka + 1
    kafka_advertised: int  # the proxy's port, told to clients
    postgres: int

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> InfraPorts:
        """The ports this state directory's broker and server were given before (they may
        still be running: infra.sh reuses them), else new ones, remembered there."""
        saved = state_dir / "ports.json"
        if saved.exists():
            return cls(**json.loads(saved.read_text()))
        ports = cls.pick()
        state_dir.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(dataclasses.asdict(ports)))
        return ports

    @classmethod
    def pick(cls, kafka: int = 19092, postgres: int = 15432) -> InfraPorts:
        """The preferred ports when they are free, else free ones; never the shared ones."""
        while not (port_free(kafka) and port_free(kafka + 1)) and kafka < 19992:
            kafka += 10
        while not port_free(postgres) and postgres < 15532:
            postgres += 1
        advertised = kafka + 2 if port_free(kafka + 2) else free_port()
        ports = cls(kafka, advertised, postgres)
        assert not {kafka, kafka + 1, advertised, postgres} & SHARED_PORTS
        return ports


class PrivateInfra:
    def __init__(self, state_dir: Path, ports: InfraPorts) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.log = state_dir / "infra-script.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SCROBBLE_LOCAL_DIR": str(self.state_dir),
            "SCROBBLE_KAFKA_PORT": str(self.ports.kafka),
            "SCROBBLE_KAFKA_ADVERTISED_PORT": str(self.ports.kafka_advertised),
            "SCROBBLE_PG_PORT": str(self.ports.postgres),
            # A broker killed with -9 recovers its logs before it answers; on a busy
            # two-core machine that can take longer than infra.sh's 120 s.
            "SCROBBLE_KAFKA_START_TIMEOUT": os.environ.get("SCROBBLE_KAFKA_START_TIMEOUT", "300"),
        }

    @property
    def admin_dsn(self) -> str:
        """The server's own port, not the proxy's: the harness's checks never go through
        the faults it injects."""
        return f"postgresql://scrobble:scrobble@127.0.0.1:{self.ports.postgres}/scrobble"

    def _run(self, command: str, timeout_s: float) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            done = subprocess.run(
                ["bash", str(INFRA_SCRIPT), command],
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=log,
                timeout=timeout_s,
                check=False,
            )
        if done.returncode != 0:
            raise InfraError(f"infra.sh {command} failed (exit {done.returncode}); see {self.log}")

    async def up(self, timeout_s: float = 600) -> float:
        """Start (or reuse) both; returns the seconds it took."""
        started = time.monotonic()
        await asyncio.to_thread(self._run, "up", timeout_s)
        return time.monotonic() - started

    async def down(self) -> None:
        await asyncio.to_thread(self._run, "down", 300)

    def kafka_pid(self) -> int | None:
        return _pid_from(self.state_dir / "kafka.pid")

    def postgres_pids(self) -> list[int]:
        """The postmaster first, then every process it started."""
        location = self.state_dir / "pgdata.location"
        pgdata = Path(location.read_text().strip()) if location.exists() else None
        pgdata = pgdata or self.state_dir / "pgdata"
        postmaster = _pid_from(pgdata / "postmaster.pid")
        if postmaster is None:
            return []
        return [postmaster, *children(postmaster)]

    def kill_kafka(self) -> list[int]:
        pid = self.kafka_pid()
        return _kill([pid] if pid else [])

    def kill_postgres(self) -> list[int]:
        return _kill(self.postgres_pids())


def _pid_from(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _kill(pids: list[int]) -> list[int]:
    killed = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
