"""Request bodies and query strings checked against pydantic models, with 422 answers
that name each offending field (``errors: [{"field": ..., "message": ...}]``).

Bodies are read by the shared bounded reader (``scrobble_shared.json_limits``): what is not
JSON, holds NaN or infinite numbers, or nests deeper than ``MAX_JSON_DEPTH`` is a 400
before any model sees it; the app's ``client_max_size`` bounds the size.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, ValidationError

from scrobble_gateway.keys import CURSORS
from scrobble_gateway.pagination import DEFAULT_LIMIT, MAX_LIMIT, BadCursor, Position
from scrobble_gateway.problems import PROBLEM_JSON
from scrobble_shared.json_limits import UnreadableJson, load_json

Model = TypeVar("Model", bound=BaseModel)


class InvalidRequest(Exception):
    """A request the client must change: 400 (unreadable) or 422 (fields), with the fields."""

    def __init__(self, status: int, detail: str, errors: Sequence[Mapping[str, str]] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = [dict(e) for e in errors]

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": "Bad Request" if self.status == 400 else "Unprocessable Content",
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return web.json_response(body, status=self.status, content_type=PROBLEM_JSON)


def field_error(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(422, f"{field}: {message}", [{"field": field, "message": message}])


def _field_name(loc: Sequence[int | str], prefix: str) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc]
    return ".".join(parts) or "body"


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    return str(error["msg"])


def validation_errors(exc: ValidationError, prefix: str = "") -> InvalidRequest:
    errors = [
        {"field": _field_name(e["loc"], prefix), "message": _message(e)} for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return InvalidRequest(422, detail, errors)


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The JSON body, or :class:`InvalidRequest` (400) when it is not JSON we read."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise InvalidRequest(400, "the request needs a JSON body")
    try:
        return load_json(raw)
    except UnreadableJson as exc:
        raise InvalidRequest(400, f"the request body is {exc}") from None


async def parse_body(request: web.Request, model: type[Model], *, optional: bool = False) -> Model:
    body = await read_json(request, optional=optional)
    if not isinstance(body, dict):
        raise InvalidRequest(422, "body: expected a JSON object", [_object_expected()])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_errors(exc) from None


def _object_expected() -> dict[str, str]:
    return {"field": "body", "message": "expected a JSON object"}


def parse_limit(query: Mapping[str, str]) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdecimal() or not 1 <= int(text) <= MAX_LIMIT:
        raise field_error("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def parse_cursor(request: web.Request) -> Position | None:
    """The ``cursor`` parameter: a 422 naming it unless it is one we signed."""
    text = request.query.get("cursor")
    if text is None:
        return None
    try:
        return request.app[CURSORS].decode(text)
    except BadCursor as exc:
        raise field_error("cursor", str(exc)) from None


def query_uuid(request: web.Request, name: str) -> uuid.UUID | None:
    """The query parameter ``name`` as a UUID (None when absent), or a 422 naming it."""
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise field_error(name, "must be a UUID") from None


def check_known_params(query: MultiMapping[str], known: set[str]) -> None:
    """An unknown query parameter is most likely a typo that would silently widen a list."""
    unknown = sorted(set(query) - known)
    if unknown:
        errors = [{"field": name, "message": "unknown query parameter"} for name in unknown]
        raise InvalidRequest(422, f"unknown query parameter(s): {', '.join(unknown)}", errors)
    repeated = sorted(name for name in known if len(query.getall(name, [])) > 1)
    if repeated:
        errors = [{"field": name, "message": "given more than once"} for name in repeated]
        raise InvalidRequest(422, f"repeated query parameter(s): {', '.join(repeated)}", errors)
