"""Where the tests find real Kafka and Postgres.

In this order (docs/LOCAL_INFRA.md): ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set;
else the local processes that ``deploy/local/infra.sh up`` starts (or reuses); else
testcontainers, but only when a Docker engine answers. With none of them the tests fail
with a message that says what to do; they are never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INFRA_SCRIPT = REPO / "deploy" / "local" / "infra.sh"


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    database_url: str
    source: str


def _parse_exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value.strip("'\"")
    return found


def _from_env() -> Infra | None:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("DATABASE_URL")
    if kafka and database:
        # The test command exports what deploy/local/infra.sh started: still ours to stop
        # and start (outage tests need that), so call it local.
        return Infra(kafka, database, "local" if _is_local(kafka, database) else "environment")
    return None


def _is_local(kafka: str, database: str) -> bool:
    if not INFRA_SCRIPT.exists():
        return False
    printed = subprocess.run(
        ["bash", str(INFRA_SCRIPT), "env"], capture_output=True, text=True, check=False
    )
    local = _parse_exports(printed.stdout)
    return (local.get("KAFKA_BOOTSTRAP_SERVERS"), local.get("DATABASE_URL")) == (kafka, database)


def _from_local_script() -> tuple[Infra | None, str]:
    if not INFRA_SCRIPT.exists():
        return None, f"{INFRA_SCRIPT} is missing"
    result = subprocess.run(
        ["bash", str(INFRA_SCRIPT), "up"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if result.returncode != 0:
        return None, f"infra.sh up failed: {result.stderr[-2000:]}"
    exports = _parse_exports(result.stdout)
    return Infra(exports["KAFKA_BOOTSTRAP_SERVERS"], exports["DATABASE_URL"], "local"), ""


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)
    return probe.returncode == 0


def _from_testcontainers() -> Infra:  # pragma: no cover - no Docker engine on our machines
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer("apache/kafka:4.1.0").with_kraft()
    kafka.start()
    postgres = PostgresContainer("postgres:15", driver=None)
    postgres.start()
    return Infra(kafka.get_bootstrap_server(), postgres.get_connection_url(), "testcontainers")


def discover() -> Infra:
    found = _from_env()
    if found:
        return found
    local, why_not = _from_local_script()
    if local:
        return local
    if _docker_answers():
        return _from_testcontainers()
    raise RuntimeError(
        "no Kafka/Postgres for the integration tests: set KAFKA_BOOTSTRAP_SERVERS and "
        f"DATABASE_URL, or make deploy/local/infra.sh work ({why_not}), or run a Docker engine"
    )


async def restart_local_postgres(down_s: float, stopped: asyncio.Event | None = None) -> None:
    """Stop the local Postgres of deploy/local, wait, start it again (outage tests);
    ``stopped`` is set once it is really down."""
    stop = await asyncio.create_subprocess_exec("bash", str(INFRA_SCRIPT), "stop-postgres")
    assert await stop.wait() == 0, "infra.sh stop-postgres failed"
    if stopped is not None:
        stopped.set()
    await asyncio.sleep(down_s)
    start = await asyncio.create_subprocess_exec(
        "bash", str(INFRA_SCRIPT), "up", stdout=asyncio.subprocess.DEVNULL
    )
    assert await start.wait() == 0, "infra.sh up failed after the outage"


@contextlib.asynccontextmanager
async def frozen_local_kafka() -> AsyncIterator[None]:
    """The local broker of deploy/local stopped with SIGSTOP for the block, then resumed:
    connections stay open but nothing answers, as with a hung broker or a network cut."""
    local = Path(os.environ.get("SCROBBLE_LOCAL_DIR") or REPO / ".local")
    pid = int((local / "kafka.pid").read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
