"""``scrobble gateway`` as an operator runs it: serves on GATEWAY_PORT, ready when Postgres
and Kafka answer, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.integration.gateway.conftest import JWT_ENVIRON, bearer, make_token
from tests.support.infra import Infra
from tests.support.services import ServiceProcess
from tests.support.topics import Topics


async def test_scrobble_gateway_serves_and_stops_on_sigterm(
    infra: Infra, database_url: str, topics: Topics, tmp_path: Path
) -> None:
    process = ServiceProcess(
        "gateway",
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            **JWT_ENVIRON,
            "SCROBBLE_TOPIC_PREFIX": topics.name("scrobble."),
        },
        tmp_path / "gateway.log",
    )
    process.env["GATEWAY_PORT"] = str(process.metrics_port)
    await process.start()  # waits for /readyz on the gateway's port
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{process.metrics_port}") as client:
            listed = await client.get(
                "/api/v1/scrobble/connections", headers=bearer(make_token(uuid.uuid4()))
            )
            assert listed.status_code == 200
            assert listed.json() == {"items": [], "next_cursor": None}
            metrics = await client.get("/metrics")
            assert "scrobble_gateway_requests_total" in metrics.text
    finally:
        code = await process.stop(signal.SIGTERM)
    assert code == 0, process.log_tail()
    log = (tmp_path / "gateway.log").read_text()
    assert "Traceback" not in log
    assert "GET /api/v1/scrobble/connections -> 200" in log
