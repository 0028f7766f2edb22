"""A real Prometheus (Debian's /usr/bin/prometheus) with the repository's alerting rules
scrapes real `scrobble ingest`, `scrobble dispatcher`, `scrobble gateway` and `scrobble
intake` processes:
the targets come up, the key series arrive, every alerting rule evaluates without error
on the real label sets, and every dashboard and autoscaling query is valid PromQL to the
server. The container health check answers for a live service too."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet

from scrobble_shared.trackers.registry import SERVICES
from tests.deploy.support import REPO, RULES, adapter_exprs, dashboard_exprs, rule_exprs, tool
from tests.support.ingest import IngestSetup
from tests.support.kafka import publish
from tests.support.services import ServiceProcess, free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
DEADLINE_S = 90.0
JOBS = {
    "ingest": "scrobble-ingest",
    "dispatcher": "scrobble-dispatcher",
    "gateway": "scrobble-gateway",
    "intake": "scrobble-intake",
}


async def until(
    probe: Callable[[], Awaitable[T | None]], what: str, deadline_s: float = DEADLINE_S
) -> T:
    """Poll ``probe`` until it returns something other than None or False."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    last: object = None
    while loop.time() < end:
        try:
            found = await probe()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            found, last = None, exc
        if found is not None and found is not False:
            return found
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what}: not within {deadline_s} s (last: {last!r})")


class Prometheus:
    """One Prometheus server on a free loopback port with its own storage."""

    def __init__(self, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / "prometheus.yml"
        self.log = workdir / "prometheus.log"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                        for job, port in targets.items()
                    ],
                }
            )
        )
        self.proc: asyncio.subprocess.Process | None = None
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    async def start(self) -> None:
        log = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            tool("prometheus"),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            stdout=log,
            stderr=log,
        )
        log.close()

        async def ready() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
            return (await self.http.get("/-/ready")).status_code == 200

        await until(ready, "prometheus ready")

    async def stop(self) -> None:
        await self.http.aclose()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 30)

    async def api(self, path: str, **params: str) -> Any:
        answer = await self.http.get(f"/api/v1/{path}", params=params)
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result


@contextlib.asynccontextmanager
async def running(*processes: ServiceProcess) -> AsyncIterator[None]:
    try:
        await asyncio.gather(*(p.start() for p in processes))
        yield
    finally:
        await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)


def services(setup: IngestSetup, tmp: Path) -> dict[str, ServiceProcess]:
    key = Fernet.generate_key().decode()
    common = {**setup.env, "TOKEN_ENCRYPTION_KEY": key}
    # ListenBrainz needs no app credentials, so the dispatcher enables it: point it at a
    # closed loopback port so that nothing could ever leave the machine.
    dispatcher = ServiceProcess(
        "dispatcher",
        {
            **common,
            "DISPATCHER_GROUP_ID": setup.env["INGEST_GROUP_ID"] + "-dispatch",
            "LISTENBRAINZ_API_URL": "http://127.0.0.1:9/1",
        },
        tmp / "dispatcher.log",
    )
    gateway_env = {
        "GATEWAY_JWT_SECRET": secrets.token_urlsafe(32),
        "GATEWAY_JWT_ISSUER": "prometheus-scrape-test",
        "GATEWAY_JWT_AUDIENCE": "prometheus-scrape-test",
    }
    gateway = ServiceProcess("gateway", {**common, **gateway_env}, tmp / "gateway.log")
    gateway.env["GATEWAY_PORT"] = str(gateway.metrics_port)
    intake = ServiceProcess("intake", setup.env, tmp / "intake.log")
    intake.env["INTAKE_PORT"] = str(intake.metrics_port)
    return {
        "ingest": setup.process(),
        "dispatcher": dispatcher,
        "gateway": gateway,
        "intake": intake,
    }


def as_query(expr: str) -> str:
    """A dashboard expression as Grafana sends it, with its variables filled in."""
    expr = re.sub(r"label_values\(\s*([^,]+?)\s*,\s*\w+\s*\)", r"\1", expr)
    return expr.replace("$__rate_interval", "1m").replace("$service", ".*")


async def test_prometheus_scrapes_the_services_and_evaluates_the_rules(
    ingest_setup: IngestSetup, tmp_path: Path
) -> None:
    procs = services(ingest_setup, tmp_path)
    async with running(*procs.values()):
        prometheus = Prometheus(tmp_path, {JOBS[name]: p.metrics_port for name, p in procs.items()})
        try:
            await prometheus.start()
            await check_everything(prometheus, ingest_setup, procs)
        finally:
            await prometheus.stop()
            logs = "\n".join(f"--- {n}\n{p.log_tail(15)}" for n, p in procs.items())
            print(logs, file=sys.stderr)


async def check_everything(
    prometheus: Prometheus, setup: IngestSetup, procs: dict[str, ServiceProcess]
) -> None:
    # One unusable record: ingest dead-letters it and counts it by outcome.
    await publish(setup.infra.kafka_bootstrap, setup.playback, [(b"someone", b"not json")])

    async def targets_up() -> bool:
        active = (await prometheus.api("targets"))["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        return health == dict.fromkeys(JOBS.values(), "up")

    await until(targets_up, "all four targets up")
    up = await prometheus.query('up{job=~"scrobble-.*"}')
    assert sorted(r["metric"]["job"] for r in up if r["value"][1] == "1") == sorted(JOBS.values())

    async def series(expr: str) -> list[dict[str, Any]] | None:
        return await prometheus.query(expr) or None

    events = await until(
        lambda: series("scrobble_ingest_events_total >= 1"), "scrobble_ingest_events_total"
    )
    assert {r["metric"]["job"] for r in events} == {"scrobble-ingest"}
    enabled = await until(
        lambda: series('scrobble_service_enabled{service="listenbrainz"} == 1'),
        "the dispatcher's scrobble_service_enabled",
    )
    assert enabled[0]["metric"]["job"] == "scrobble-dispatcher"
    depth = await until(lambda: series("scrobble_queue_depth"), "scrobble_queue_depth")
    # One series per tracker of the registry, disabled ones included (zero depth).
    assert {r["metric"]["service"] for r in depth} == set(SERVICES)
    await until(
        lambda: series('scrobble_gateway_requests_total{route!=""}'),
        "scrobble_gateway_requests_total",
    )
    # A webhook to a secret no source has: counted by kind and outcome, by no source.
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"http://127.0.0.1:{procs['intake'].metrics_port}/api/v1/intake/plex/{'x' * 32}",
            files={"payload": (None, "{}")},
        )
    assert answer.status_code == 404
    refused = await until(
        lambda: series('scrobble_intake_requests_total{outcome="unknown_source"} >= 1'),
        "scrobble_intake_requests_total",
    )
    assert refused[0]["metric"]["job"] == "scrobble-intake"
    assert refused[0]["metric"]["kind"] == "plex"

    # Every alerting rule evaluated on the real series, without an error.
    async def rules_evaluated() -> dict[str, str] | None:
        groups = (await prometheus.api("rules", type="alert"))["groups"]
        health = {r["name"]: r["health"] for g in groups for r in g["rules"]}
        return health if "unknown" not in health.values() else None

    health = await until(rules_evaluated, "every alerting rule evaluated")
    assert health == dict.fromkeys(rule_exprs(), "ok"), health

    # Every dashboard and autoscaling query is valid PromQL to the server.
    for where, expr in {**dashboard_exprs(), **adapter_exprs()}.items():
        answer = await prometheus.http.get("/api/v1/query", params={"query": as_query(expr)})
        assert answer.json()["status"] == "success", f"{where}: {answer.text}"

    # The container health check says healthy for a live service.
    checked = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "deploy" / "docker" / "healthcheck.py"),
        "METRICS_PORT",
        "1",
        env={"METRICS_PORT": str(procs["ingest"].metrics_port)},
    )
    assert await asyncio.wait_for(checked.wait(), 30) == 0
