"""Checking real answers against the OpenAPI document: the operation exists, the status is
documented (or covered by ``default``), the media type is listed for it, and the body
validates against its schema (JSON Schema 2020-12, formats checked)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator, FormatChecker

from scrobble_gateway.openapi import load_document


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def check_answer(method: str, template: str, status: int, content_type: str, body: bytes) -> None:
    """Raise AssertionError when the answer is not what the document promises."""
    document = load_document()
    operation = document["paths"].get(template, {}).get(method.lower())
    assert operation is not None, f"{method} {template} is not documented"
    responses = operation["responses"]
    response = responses.get(str(status)) or responses.get("default")
    assert response is not None, f"{method} {template}: status {status} is not documented"
    response = _resolve(document, response)
    media = response.get("content", {})
    if not media:
        assert not body, f"{method} {template} {status}: documented without a body"
        return
    assert content_type in media, (
        f"{method} {template} {status}: {content_type} not in {sorted(media)}"
    )
    schema = media[content_type].get("schema")
    if schema is None or not content_type.endswith("json"):
        return
    root = {"components": document["components"], **schema}
    validator = Draft202012Validator(root, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(json.loads(body)), key=lambda e: list(e.path))
    assert not errors, f"{method} {template} {status}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )


async def answers_as_documented(
    client: TestClient[Any, Any], calls: list[tuple[str, str, str, dict[str, Any]]]
) -> list[int]:
    """Make each call (method, path template, path, request options), nothing followed,
    and check each answer against the document; the statuses, in order."""
    statuses = []
    for method, template, path, options in calls:
        answer = await client.request(method, path, allow_redirects=False, **options)
        body = await answer.read()
        statuses.append(answer.status)
        check_answer(method, template, answer.status, answer.content_type, body)
    return statuses
