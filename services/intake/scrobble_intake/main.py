"""``scrobble intake``: the app in the foreground on ``INTAKE_HOST:INTAKE_PORT``.

SIGTERM and SIGINT stop it gracefully: the listener closes, requests in flight finish (up
to the shutdown timeout), then the producer flushes and the pool closes.
"""

from __future__ import annotations

import logging
from typing import Final

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from scrobble_intake.app import create_app
from scrobble_intake.handlers import source_of
from scrobble_shared.runtime import tune_gc
from scrobble_shared.settings import Settings

SHUTDOWN_TIMEOUT_S: Final = 10.0


class IntakeAccessLogger(AbstractAccessLogger):
    """Method, route, status, time and the source's id: never the path, which holds the
    source's secret. Answers below 400 are logged at DEBUG: a busy media server sends a
    webhook every few seconds per player, and a line each was a tenth of the intake's CPU;
    the metrics count them all."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        level = logging.DEBUG if response.status < 400 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        route = "-"
        source = None
        if isinstance(request, web.Request):
            resource = request.match_info.route.resource
            route = "unmatched" if resource is None else resource.canonical
            source = source_of(request)
        self.logger.log(
            level,
            "%s %s -> %d in %.1f ms (source %s)",
            request.method,
            route,
            response.status,
            time * 1000,
            "-" if source is None else source.id,
        )


def run(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT, on uvloop (the event loop's own work is a good part of
    a webhook's cost) with the collector tuned as in the other services."""
    tune_gc()
    web.run_app(
        create_app(settings),
        loop=uvloop.new_event_loop(),
        host=settings.intake_host,
        port=settings.intake_port,
        print=None,
        access_log=logging.getLogger("scrobble_intake.access"),
        access_log_class=IntakeAccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        handle_signals=True,
    )
    return 0
