"""The whole system for one run, wired the way an operator runs it: the proxy in front of
Kafka, Postgres and the sandbox; the sandbox; ingest, two dispatchers, the import worker,
the intake and the gateway, each a process of its own that reaches its dependencies only
through the proxy."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
from cryptography.fernet import Fernet

from bench.chaos.infra import PrivateInfra, free_port
from bench.chaos.processes import Service, python_module, scrobble
from tests.support.databases import with_database

# What a kill trial may hit: every long-running process of the system.
KILLABLE: Final = ("ingest", "dispatcher-a", "dispatcher-b", "importer", "intake", "gateway")
ISSUER: Final = "revenge-scrobble-chaos"
# Kept from the harness's own environment; everything else is set here (no real
# credentials of the operator's shell can reach the run).
PASSED_ON: Final = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH")


@dataclass(frozen=True)
class Ports:
    proxy_control: int
    pg_proxy: int
    fakes_proxy: int
    sandbox: int
    intake: int
    gateway: int
    ingest: int
    dispatcher_a: int
    dispatcher_b: int
    importer: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(*(free_port() for _ in range(10)))


@dataclass
class Stack:
    infra: PrivateInfra
    run_dir: Path
    database: str  # the run's database name
    tag: str
    ports: Ports = field(default_factory=Ports.pick)
    services: dict[str, Service] = field(default_factory=dict)
    token_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    jwt_secret: str = field(default_factory=lambda: Fernet.generate_key().decode() * 2)
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.infra.ports.kafka_advertised}"

    @property
    def direct_dsn(self) -> str:
        """The run's database on Postgres's own port (the harness's checks)."""
        return with_database(self.infra.admin_dsn, self.database)

    @property
    def proxied_dsn(self) -> str:
        return f"postgresql://scrobble:scrobble@127.0.0.1:{self.ports.pg_proxy}/{self.database}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sandbox}"

    @property
    def intake_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.intake}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.proxy_control}"

    def _log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def _base_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k in PASSED_ON}

    def proxy_service(self) -> Service:
        routes = [
            f"kafka:{self.infra.ports.kafka_advertised}:{self.infra.ports.kafka}",
            f"postgres:{self.ports.pg_proxy}:{self.infra.ports.postgres}",
            f"fakes:{self.ports.fakes_proxy}:{self.ports.sandbox}",
        ]
        argv = python_module(
            "bench.chaos.proxy",
            "--control",
            str(self.ports.proxy_control),
            *[arg for route in routes for arg in ("--route", route)],
        )
        return Service(
            "proxy", argv, self._base_env(), f"{self.proxy_url}/routes", self._log("proxy")
        )

    def sandbox_service(self) -> Service:
        argv = scrobble("sandbox", "--port", str(self.ports.sandbox))
        return Service(
            "sandbox",
            argv,
            self._base_env(),
            f"{self.sandbox_url}/_sandbox/env",
            self._log("sandbox"),
        )

    def service_settings(self, sandbox_env: Mapping[str, str], extra: Mapping[str, str]) -> None:
        """The settings every service gets: the fakes' URLs point at the proxy."""
        direct = f"127.0.0.1:{self.ports.sandbox}/"
        proxied = f"127.0.0.1:{self.ports.fakes_proxy}/"
        fakes = {k: v.replace(direct, proxied) for k, v in sandbox_env.items()}
        self.settings = {
            **fakes,
            "DATABASE_URL": self.proxied_dsn,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "PLAYBACK_TOPIC": f"{self.tag}.playback.events",
            "SCROBBLE_TOPIC_PREFIX": f"{self.tag}.scrobble.",
            "INGEST_GROUP_ID": f"{self.tag}.ingest",
            "DISPATCHER_GROUP_ID": f"{self.tag}.dispatcher",
            "TOKEN_ENCRYPTION_KEY": self.token_key,
            "GATEWAY_JWT_SECRET": self.jwt_secret,
            "GATEWAY_JWT_ISSUER": ISSUER,
            "GATEWAY_JWT_AUDIENCE": ISSUER,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(self.ports.gateway),
            "GATEWAY_PUBLIC_URL": self.gateway_url,
            "INTAKE_HOST": "127.0.0.1",
            "INTAKE_PORT": str(self.ports.intake),
            "INTAKE_PUBLIC_URL": self.intake_url,
            **extra,
        }

    def build(self) -> None:
        env = {**self._base_env(), **self.settings}

        def metrics(port: int) -> dict[str, str]:
            return {**env, "METRICS_PORT": str(port)}

        p = self.ports
        made = [
            Service("ingest", scrobble("ingest"), metrics(p.ingest), _ready(p.ingest),
                    self._log("ingest")),
            Service("dispatcher-a", scrobble("dispatcher"), metrics(p.dispatcher_a),
                    _ready(p.dispatcher_a), self._log("dispatcher-a")),
            Service("dispatcher-b", scrobble("dispatcher"), metrics(p.dispatcher_b),
                    _ready(p.dispatcher_b), self._log("dispatcher-b")),
            Service("importer", python_module("scrobble_dispatcher.imports"),
                    metrics(p.importer), _ready(p.importer), self._log("importer")),
            Service("intake", scrobble("intake"), env, _ready(p.intake), self._log("intake")),
            Service("gateway", scrobble("gateway"), env, _ready(p.gateway),
                    self._log("gateway")),
        ]  # fmt: skip
        self.services.update({s.name: s for s in made})

    async def start_all(self) -> None:
        # One at a time: on two cores a herd of Python start-ups slows every one of them.
        for name in KILLABLE:
            await self.services[name].start()

    async def migrate(self) -> None:
        env = {**self._base_env(), "DATABASE_URL": self.direct_dsn}
        done = await asyncio.to_thread(
            subprocess.run, scrobble("migrate"), env=env, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"scrobble migrate failed: {done.stderr.decode()[-2000:]}")

    async def stop_all(self) -> None:
        for name in reversed(KILLABLE):
            service = self.services.get(name)
            if service is not None:
                await service.stop()


def _ready(port: int) -> str:
    return f"http://127.0.0.1:{port}/readyz"


async def proxy_put(stack: Stack, route: str, **faults: float | bool) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.put(f"{stack.proxy_url}/routes/{route}", json=faults)
        answer.raise_for_status()


async def proxy_cut(stack: Stack, route: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{stack.proxy_url}/routes/{route}/cut")
        answer.raise_for_status()
        return int(answer.json()["reset"])
