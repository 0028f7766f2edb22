"""Every error the gateway answers is problem+json, never a stack trace.

Failure policy of a request: an aiohttp HTTP error (404, 405, 413...) becomes the same
status as a problem; a body the client must fix is a 400/422 problem naming its fields; a
database or broker that is away is a 503; anything unexpected is a 500 without details,
logged with its traceback but without the exception's message, which could quote a token.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Final

import asyncpg
from aiohttp import web

from scrobble_gateway.problems import problem
from scrobble_gateway.routing import metrics_route
from scrobble_gateway.validation import InvalidRequest
from scrobble_shared.db.connect import DatabaseUnavailable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Headers of an HTTP error worth keeping on its problem (405 must say what is allowed).
_KEPT_HEADERS: Final = ("Allow", "Retry-After", "WWW-Authenticate", "Location")
# The database (or the network to it) being away: a 503 to try again, not a 500.
UNAVAILABLE: Final = (
    DatabaseUnavailable,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    TimeoutError,
)


def _from_http_error(exc: web.HTTPException) -> web.StreamResponse:
    default_text = f"{exc.status}: {exc.reason}"
    detail = exc.text if exc.text and exc.text != default_text else None
    response = problem(exc.status, exc.reason, detail)
    for name in _KEPT_HEADERS:
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


def _log_unexpected(request: web.Request, exc: BaseException) -> None:
    # The frames say where; the message could hold a token, so only its type is logged.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "unhandled %s in %s %s\n%s",
        type(exc).__name__,
        request.method,
        metrics_route(request),
        frames.rstrip(),
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InvalidRequest as exc:
        return exc.response()
    except web.HTTPException as exc:
        # Redirects stay redirects; an error page a handler made as HTML stays HTML.
        if exc.status < 400 or exc.content_type == "text/html":
            raise
        return _from_http_error(exc)
    except UNAVAILABLE as exc:
        log.warning(
            "%s %s: a dependency is unavailable (%s)",
            request.method,
            metrics_route(request),
            type(exc).__name__,
        )
        response = problem(503, "Service Unavailable", "a dependency is unavailable; try again")
        response.headers["Retry-After"] = "5"
        return response
    except Exception as exc:
        _log_unexpected(request, exc)
        return problem(500, "Internal Server Error")
