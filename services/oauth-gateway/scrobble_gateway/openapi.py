"""The OpenAPI 3.1 document: kept as YAML in the package (``scrobble_gateway/openapi.yaml``),
served as JSON at ``/api/v1/openapi.json``."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Final

import yaml
from aiohttp import web

from scrobble_gateway.routing import OPENAPI_PATH

# Inside the package, so a built wheel (and the container image) carries it.
DOCUMENT_PATH: Final = Path(__file__).resolve().parent / "openapi.yaml"

routes = web.RouteTableDef()


@functools.cache
def load_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text(encoding="utf-8"))
    return document


@functools.cache
def _document_json() -> bytes:
    return json.dumps(load_document(), separators=(",", ":")).encode()


@routes.get(OPENAPI_PATH)
async def openapi_json(_: web.Request) -> web.Response:
    return web.Response(body=_document_json(), content_type="application/json")
