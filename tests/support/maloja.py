"""A real Maloja server for a test: ``malojaserver`` from PyPI, installed by
deploy/tools/install-maloja.sh (``make test-tools``) into its own virtual environment, run on
a free loopback port with a temporary data directory and an API key of the test's own.

The Maloja fake (services/sandbox/scrobble_sandbox/maloja) stands in for it everywhere else;
the tests that start this one show that what our client sends is what Maloja itself takes.
A missing install fails the test (never a skip): the real server is part of the suite."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.services import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL = "deploy/tools/install-maloja.sh"
# Maloja's NAME setting: the user name validate-token answers.
OWNER = "scrobble-tests"


def maloja_command() -> Path:
    """The ``maloja`` command install-maloja.sh made (SCROBBLE_TOOLS_DIR as it reads it)."""
    tools = Path(os.environ.get("SCROBBLE_TOOLS_DIR") or REPO_ROOT / ".local" / "tools")
    return tools / "maloja-venv" / "bin" / "maloja"


@dataclass(frozen=True)
class RealMaloja:
    url: str
    api_key: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def scrobbles(self) -> list[dict[str, Any]]:
        """Every scrobble the server holds, newest first, from its own native API (with a
        first day: without one Maloja lists nothing older than what it held at start)."""
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.get(
                f"{self.url}/apis/mlj_1/scrobbles", params={"from": "1970/1/1"}
            )
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["list"]
        return found

    async def submit(self, listens: list[dict[str, Any]]) -> httpx.Response:
        """Listens sent straight to the server (``import``), as another scrobbler would."""
        async with httpx.AsyncClient(timeout=10.0) as client:
            return await client.post(
                f"{self.url}/apis/listenbrainz/1/submit-listens",
                json={"listen_type": "import", "payload": listens},
                headers={"Authorization": f"Token {self.api_key}"},
            )


async def _wait_ready(
    proc: asyncio.subprocess.Process, server: RealMaloja, timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while loop.time() < until:
            if proc.returncode is not None:
                raise AssertionError(f"maloja exited early:\n{server.log_tail()}")
            try:
                answer = await client.get(f"{server.url}/apis/mlj_1/serverinfo")
                if answer.status_code == 200 and answer.json()["db_status"]["healthy"]:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"maloja not ready in {timeout_s} s:\n{server.log_tail()}")


@asynccontextmanager
async def running_maloja(tmp: Path, ready_timeout_s: float = 90) -> AsyncIterator[RealMaloja]:
    """Maloja with a fresh data directory under ``tmp``, until the block ends."""
    command = maloja_command()
    if not command.exists():
        pytest.fail(
            f"the real Maloja server is not installed ({command} is missing): "
            f"run `make test-tools` or `bash {INSTALL}`"
        )
    data = tmp / "maloja-data"
    data.mkdir()
    api_key = secrets.token_urlsafe(32)
    # Maloja reads its API keys from here; with one there it makes none of its own.
    (data / "apikeys.yml").write_text(f"{OWNER}: {api_key}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALOJA_")}
    env |= {
        "MALOJA_DATA_DIRECTORY": str(data),
        "MALOJA_SKIP_SETUP": "yes",
        "MALOJA_FORCE_PASSWORD": secrets.token_urlsafe(16),
        "MALOJA_HOST": "127.0.0.1",
        "MALOJA_PORT": str(port),
        "MALOJA_NAME": OWNER,
    }
    log_path = tmp / "maloja.log"
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            str(command), "run", env=env, stdout=log, stderr=log, cwd=tmp
        )
    server = RealMaloja(f"http://127.0.0.1:{port}", api_key, log_path)
    try:
        await _wait_ready(proc, server, ready_timeout_s)
        yield server
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
