"""Small request and response helpers the fakes share."""

import json
from typing import Any

from aiohttp import web


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; raises ValueError when it is missing or malformed."""
    raw = await request.read()
    if not raw:
        raise ValueError("empty body")
    return json.loads(raw.decode("utf-8"))


async def read_params(request: web.Request) -> dict[str, str]:
    """Body fields of a JSON object or a urlencoded form, whichever the client sent."""
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        return {k: str(v) for k, v in form.items()}
    try:
        data = await read_json(request)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: "" if v is None else str(v) for k, v in data.items()}


async def read_form(request: web.Request) -> dict[str, str]:
    """The fields of a posted HTML form (a consent page's buttons and inputs)."""
    return {k: str(v) for k, v in (await request.post()).items()}


def scheme_token(request: web.Request, scheme: str) -> str | None:
    """The token of an `Authorization: <scheme> <token>` header (scheme case-insensitive);
    None when absent or of another scheme."""
    header = request.headers.get("Authorization", "")
    given, _, token = header.partition(" ")
    if given.lower() != scheme or not token.strip():
        return None
    return token.strip()


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    return scheme_token(request, "bearer")


def int_arg(request: web.Request, name: str, default: int) -> int:
    """An integer query parameter; raises ValueError when present but not an integer."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    return int(raw)
