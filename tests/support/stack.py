"""``scrobble up`` on free ports, for end-to-end tests: a database cloned from the migrated
template and private topic names, the five processes started as an operator starts them,
and ``scrobble down`` (then the database and topics dropped) at the end."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from scrobble_cli.quickstart import SERVICES
from tests.support import databases
from tests.support.infra import Infra
from tests.support.services import free_port
from tests.support.topics import Topics

SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
PORTS = ("gateway", "ingest", "dispatcher", "sandbox", "intake")


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    state_dir: Path
    gateway: str
    sandbox: str
    database_url: str
    up_output: str


def scrobble(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    """Run ``scrobble`` and return its standard output; a non-zero exit fails the test."""
    result = subprocess.run(
        [SCROBBLE, *args], env=dict(env), input=stdin, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"scrobble {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@asynccontextmanager
async def running_stack(
    infra: Infra,
    template: str,
    state_dir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    topics: tuple[str, ...] = (),
) -> AsyncIterator[Stack]:
    """The whole system as ``scrobble up`` starts it; ``topics`` are created beside the
    playback and work topics (base names, e.g. ``scrobble.imports``)."""
    name = databases.unique_name("st")
    dsn = await databases.create_database(infra.database_url, name, template=template)
    private = Topics(infra.kafka_bootstrap)
    for base in ("playback.events", *(f"scrobble.{s}" for s in SERVICES), *topics):
        await private.create(base)
    ports = {p: free_port() for p in PORTS}
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith(("_CLIENT_ID", "_API_KEY"))},
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "DATABASE_URL": dsn,
        "PLAYBACK_TOPIC": private.name("playback.events"),
        "SCROBBLE_TOPIC_PREFIX": private.name("scrobble."),
        "INGEST_GROUP_ID": private.name("ingest"),
        "DISPATCHER_GROUP_ID": private.name("dispatcher"),
        "GATEWAY_PUBLIC_URL": gateway,
        **(extra_env or {}),
    }
    env.pop("LISTENBRAINZ_TOKEN", None)
    try:
        output = await asyncio.to_thread(
            scrobble,
            env,
            "up",
            "--state-dir", str(state_dir),
            "--gateway-port", str(ports["gateway"]),
            "--ingest-metrics-port", str(ports["ingest"]),
            "--dispatcher-metrics-port", str(ports["dispatcher"]),
            "--sandbox-port", str(ports["sandbox"]),
            "--intake-port", str(ports["intake"]),
        )  # fmt: skip
        yield Stack(
            env=env,
            state_dir=state_dir,
            gateway=gateway,
            sandbox=f"http://127.0.0.1:{ports['sandbox']}",
            database_url=dsn,
            up_output=output,
        )
    finally:
        await asyncio.to_thread(
            subprocess.run, [SCROBBLE, "down", "--state-dir", str(state_dir)], env=env, check=False
        )
        await private.delete_created()
        await databases.drop_database(infra.database_url, name)
