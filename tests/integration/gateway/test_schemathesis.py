"""Schemathesis against ``scrobble gateway`` as an operator runs it, with the sandbox standing
in for the five services: generated requests for every documented operation (a bounded
number each), and no answer may be a 5xx or break the document (status, media type,
headers, body schema). Negative (invalid) requests must not make a 5xx either.

The hostile-input bar of issue 15: at least :data:`MIN_REQUESTS` requests in all, every
operation of the document among them, 0 answered with a 5xx; the count is printed. A valid
bearer token with the admin role goes with every request, so the admin routes and every
route behind the token are exercised; updates and hand-queued scrobbles target a real
connection of that user. The process's quotas never bite (``UNTHROTTLED``), so requests
reach the handlers rather than a 429; the hand-written cases are ``test_hostile_input.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
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
from tests.integration.gateway.conftest import JWT_ENVIRON, UNTHROTTLED, bearer, make_token
from tests.support.infra import Infra
from tests.support.services import ServiceProcess
from tests.support.topics import Topics

USER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
POSITIVE_EXAMPLES = 60
NEGATIVE_EXAMPLES = 50
MIN_REQUESTS = 2000
RESPONSE_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def fuzz(
    base_url: str,
    headers: dict[str, str],
    connection_id: uuid.UUID,
    seen: dict[str, set[int]],
    made: Counter[str],
    answers: Counter[int],
) -> list[str]:
    """Run every operation; the failures, one line each (blocking: call in a thread).
    ``seen`` collects the statuses each operation answered, ``made`` counts the requests
    of each operation and mode, ``answers`` every request's status."""
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
            made[f"{label} ({mode.value})"] += 1
            answers[response.status_code] += 1
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


@pytest.mark.timeout(900)
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
                **UNTHROTTLED,
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
            made: Counter[str] = Counter()
            answers: Counter[int] = Counter()
            failures = await asyncio.to_thread(
                fuzz, base_url, headers, connection_id, seen, made, answers
            )
        finally:
            code = await process.stop()
        assert code == 0, process.log_tail()
    report(made, seen, answers)
    assert not failures, "\n\n".join(failures)
    assert sum(made.values()) >= MIN_REQUESTS
    assert [status for status in answers if status >= 500] == []
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


def report(made: Counter[str], seen: dict[str, set[int]], answers: Counter[int]) -> None:
    """The figures of the run: requests in all, by mode and by status, and each
    operation's share with the statuses it answered."""
    by_mode = Counter(label.rsplit(" (", 1)[1].rstrip(")") for label in made.elements())
    by_operation = Counter({label.rsplit(" (", 1)[0]: 0 for label in made})
    for label, count in made.items():
        by_operation[label.rsplit(" (", 1)[0]] += count
    answered_5xx = sum(count for status, count in answers.items() if status >= 500)
    print(
        f"\ngenerated requests: {sum(made.values())} ({dict(by_mode)}) over "
        f"{len(by_operation)} operations; answered 5xx: {answered_5xx}; "
        f"by status: {dict(sorted(answers.items()))}"
    )
    for label, count in sorted(by_operation.items()):
        print(f"  {count:4d}  {label}  statuses {sorted(seen.get(label, ()))}")


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
