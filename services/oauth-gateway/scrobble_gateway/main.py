"""``scrobble gateway``: the app in the foreground on ``GATEWAY_HOST:GATEWAY_PORT``.

SIGTERM and SIGINT stop it gracefully: the listener closes, requests in flight finish
(up to the shutdown timeout), then the resources are closed in reverse order.
"""

from __future__ import annotations

import logging
from typing import Final

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from scrobble_gateway.app import create_app
from scrobble_gateway.routing import metrics_route
from scrobble_shared.settings import Settings

log = logging.getLogger("scrobble_gateway")

SHUTDOWN_TIMEOUT_S: Final = 10.0


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Method, path, status and time, never the query string: OAuth callbacks carry codes
    and Last.fm tokens there. Paths hold ids but never a secret."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = metrics_route(request) if isinstance(request, web.Request) else "-"
        self.logger.info(
            "%s %s -> %d in %.1f ms (%s)",
            request.method,
            request.path,
            response.status,
            time * 1000,
            route,
        )


def run(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT, on uvloop as the other services (aiohttp's server and
    the httpx calls to the trackers and the identity provider cost less on it)."""
    app = create_app(settings)
    log.info("gateway: listening on %s:%d", settings.gateway_host, settings.gateway_port)
    web.run_app(
        app,
        loop=uvloop.new_event_loop(),
        host=settings.gateway_host,
        port=settings.gateway_port,
        print=None,
        access_log=logging.getLogger("scrobble_gateway.access"),
        access_log_class=PathOnlyAccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        handle_signals=True,
    )
    return 0
