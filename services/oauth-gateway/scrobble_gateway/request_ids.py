"""A request id on every request: taken from ``X-Request-Id`` when the caller (or a proxy)
sent a sane one, else made here; bound to every log line the request causes and sent back
in the answer's ``X-Request-Id``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from scrobble_shared import logs

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEADER: Final = "X-Request-Id"
# Ids go into log lines: short, and nothing that could forge a line or carry a token.
_SANE: Final = re.compile(r"[A-Za-z0-9._:-]{8,64}")


def request_id_of(request: web.Request) -> str:
    given = request.headers.get(HEADER, "")
    return given if _SANE.fullmatch(given) else uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    with logs.bound(request_id=request_id):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[HEADER] = request_id
            raise
        response.headers[HEADER] = request_id
        return response
