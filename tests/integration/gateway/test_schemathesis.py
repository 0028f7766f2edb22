"""Schemathesis against ``scrobble gateway`` as an operator runs it, with the sandbox standing
in for the five services: generated requests for every documented operation (a bounded
number each), and no answer may be a 5xx or break the document (status, media type,
headers, body schema). Negative (invalid) requests must not make a 5xx either.

A valid bearer token with the admin role goes with every request, so the admin routes are
exercised too; updates and hand-queued scrobbles target a real connection of that user.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from scrobble_gateway.openapi import load_document
from scrobble_sandbox import running_sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import NewConnection
from scrobble_shared.db.connections import create_connection as create_stored_connection
from scrobble_shared.service_names import SERVICES
from tests.integration.gateway.conftest import JWT_ENVIRON, bearer, make_token
from tests.support.infra import Infra
from tests.support.services import ServiceProcess
from tests.support.topics import Topics

USER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
POSITIVE_EXAMPLES = 25
NEGATIVE_EXAMPLES = 10
RESPONSE_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def fuzz(
    base_url: str, headers: dict[str, str], connection_id: uuid.UUID, seen: dict[str, set[int]]
) -> list[str]:
    """Run every operation; the failures, one line each (blocking: call in a thread).
    ``seen`` collects the statuses each operation answered."""
    schema = schemathesis.openapi.from_dict(load_document())
    failures: list[str] = []

    def aim(case: Any) -> None:
        if case.operation.path == "/api/v1/scrobble/connections/{id}" and case.method == "PUT":
            case.path_parameters = {"id": str(connection_id)}
        if case.operation.path == "/api/v1/scrobble/queue" and isinstance(case.body, dict):
            case.body["connection_id"] = str(connection_id)

    def runner(operation: Any, mode: GenerationMode, examples: int, used: list[Any]) -> Any:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            aim(case)
            response = case.call(base_url=base_url, headers=headers, timeout=15)
            label = f"{case.method.upper()} {case.operation.path}"
            seen.setdefault(label, set()).add(response.status_code)
            case.validate_response(response, checks=used)

        return run

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document does not load: {result.err()}"
        operation = result.ok()
        for mode, examples, used_checks in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES, RESPONSE_CHECKS),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, [checks.not_a_server_error]),
        ):
            try:
                runner(operation, mode, examples, used_checks)()
            except Unsatisfiable:
                # Nothing to make invalid: no parameters and no body.
                assert mode is GenerationMode.NEGATIVE, operation.path
            # Schemathesis reports failures as a BaseExceptionGroup; gather them all.
            except (Exception, FailureGroup) as exc:
                label = f"{operation.method.upper()} {operation.path} ({mode.value})"
                failures.append(f"{label}: {str(exc)[:1500]}")
    return failures


async def test_generated_requests_get_no_5xx_and_documented_answers(
    infra: Infra, database_url: str, topics: Topics, tmp_path: Path
) -> None:
    for service in SERVICES:
        await topics.create(f"scrobble.{service}")
    async with running_sandbox() as sandbox:
        sandbox.disable_rate_limits()
        key = Fernet.generate_key().decode()
        process = ServiceProcess(
            "gateway",
            {
                **sandbox.env,
                "DATABASE_URL": database_url,
                "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
                "TOKEN_ENCRYPTION_KEY": key,
                **JWT_ENVIRON,
                "SCROBBLE_TOPIC_PREFIX": topics.name("scrobble."),
            },
            tmp_path / "gateway.log",
        )
        # The gateway serves /readyz on its own port, which ServiceProcess waits on.
        base_url = f"http://127.0.0.1:{process.metrics_port}"
        process.env["GATEWAY_PORT"] = str(process.metrics_port)
        process.env["GATEWAY_PUBLIC_URL"] = base_url
        await process.start()
        try:
            connection_id = await create_connection(database_url, key)
            headers = bearer(make_token(USER, ("admin",)))
            seen: dict[str, set[int]] = {}
            failures = await asyncio.to_thread(fuzz, base_url, headers, connection_id, seen)
        finally:
            code = await process.stop()
        assert code == 0, process.log_tail()
    assert not failures, "\n\n".join(failures)
    # The generated requests got past the token and reached the handlers' own logic.
    operations = [
        method
        for item in load_document()["paths"].values()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    ]
    assert len(seen) == len(operations)
    assert not [label for label, statuses in seen.items() if statuses <= {401}]
    assert 200 in seen["PUT /api/v1/scrobble/connections/{id}"]
    assert 202 in seen["POST /api/v1/scrobble/queue"]
    log = (tmp_path / "gateway.log").read_text()
    assert "Traceback" not in log
    assert "unhandled" not in log


async def create_connection(database_url: str, key: str) -> uuid.UUID:
    """The user's Trakt connection, syncing everything, so most generated work is taken."""
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_stored_connection(
            conn,
            TokenCipher(key),
            NewConnection(
                user_id=USER,
                service="trakt",
                access_token="sandbox-access",
                refresh_token="sandbox-refresh",
                sync_ratings=True,
                sync_watch_status=True,
            ),
        )
    finally:
        await conn.close()
    return created.id
