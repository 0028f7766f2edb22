"""What the import tests share: a gateway in-process (to start jobs and read progress as a
user does), the sandbox, the topics, and the import worker as a process of its own
(``python -m scrobble_dispatcher.imports``) whose peak RSS can be read while it runs."""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from scrobble_cli.quickstart import own_server_url
from scrobble_sandbox import Sandbox
from tests.integration.gateway.conftest import Gateway
from tests.support.services import ServiceProcess

USER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")


class ImportWorkerProcess(ServiceProcess):
    """The import worker alone; ``read_pacing=False`` only where a fake's limit allows the
    calls back to back (said in each test)."""

    def __init__(self, env: dict[str, str], log_path: Path, *, read_pacing: bool) -> None:
        super().__init__("imports", env, log_path)
        self.args = [] if read_pacing else ["--no-read-pacing"]

    async def start(self, ready_timeout_s: float = 30) -> None:
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scrobble_dispatcher.imports",
            *self.args,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        await self.wait_ready(ready_timeout_s)

    def peak_rss_mib(self) -> float:
        """VmHWM of the running process (its peak resident set so far)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM in /proc status")


@dataclass
class ImportSetup:
    gateway: Gateway
    sandbox: Sandbox
    env: dict[str, str]
    imported_topic: str
    tmp: Path

    def worker(self, *, read_pacing: bool, name: str = "worker") -> ImportWorkerProcess:
        return ImportWorkerProcess(self.env, self.tmp / f"{name}.log", read_pacing=read_pacing)

    async def connect(self, service: str, **settings: Any) -> uuid.UUID:
        names = {"lastfm": "sandbox", "librefm": "sandbox", "listenbrainz": "sandbox"}
        return await self.gateway.connect(
            USER,
            service,
            access_token=self.sandbox.env["SANDBOX_TOKEN"],
            external_user_name=names.get(service),
            # A tracker each user runs: the fake's address is the user's own server.
            api_url=own_server_url(service, self.sandbox.env),
            **settings,
        )

    async def start(self, service: str, **body: Any) -> dict[str, Any]:
        answer = await self.gateway.client.post(
            f"/api/v1/scrobble/import/{service}", json=body, headers=self.gateway.auth(USER)
        )
        assert answer.status == 202, await answer.text()
        job: dict[str, Any] = await answer.json()
        return job

    async def job(self, job_id: str) -> dict[str, Any]:
        answer = await self.gateway.client.get(
            f"/api/v1/scrobble/import/jobs/{job_id}", headers=self.gateway.auth(USER)
        )
        assert answer.status == 200, await answer.text()
        found: dict[str, Any] = await answer.json()
        return found

    async def wait_job(
        self, job_id: str, worker: ServiceProcess, until: Any = None, deadline_s: float = 120
    ) -> dict[str, Any]:
        """Poll the job through the API until it is finished (or ``until(job)`` holds)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while True:
            job = await self.job(job_id)
            done = until(job) if until is not None else job["state"] in ("done", "failed")
            if done:
                return job
            if loop.time() > end:
                raise AssertionError(f"job not there in {deadline_s} s: {job}\n{worker.log_tail()}")
            await asyncio.sleep(0.2)

    async def run_job(
        self, worker: ServiceProcess, service: str = "trakt", deadline_s: float = 60
    ) -> dict[str, Any]:
        """Start ``worker``, start an import of ``service`` and wait until the job is
        finished; the worker must then stop cleanly. The finished job."""
        await worker.start()
        try:
            job = await self.start(service)
            return await self.wait_job(job["id"], worker, deadline_s=deadline_s)
        finally:
            assert await worker.stop() == 0

    async def count(self, query: str, *args: Any) -> int:
        conn = await asyncpg.connect(self.gateway.database_url)
        try:
            value: int = await conn.fetchval(query, *args)
            return value
        finally:
            await conn.close()
