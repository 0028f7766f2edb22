"""The gateway's one wiring place: :func:`create_app` checks the settings, declares the
resources (pool, outbox producer and relay, token cipher, HTTP client) in ``cleanup_ctx``
so they are opened at start-up and closed in reverse, and mounts the routes.

Middlewares, outermost first: metrics (sees every final status), problems (errors become
problem+json), bearer auth (sets the caller; 401/403; the page's session cookie with its
CSRF token counts too, see ``page/session_auth.py``), quotas (charges the caller; 429). The
page for people at ``/`` checks its session itself (``page/``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from typing import Final

import httpx
from aiohttp import web

from scrobble_gateway import api, connect, health, imports, openapi, own_dead_letters, page, sources
from scrobble_gateway.auth import TokenVerifier, auth_middleware
from scrobble_gateway.errors import problem_middleware
from scrobble_gateway.keys import CIPHER, CURSORS, HTTP, POOL, PRODUCER, QUOTAS, RELAY, SETTINGS
from scrobble_gateway.metrics import metrics_middleware
from scrobble_gateway.pagination import CursorSigner
from scrobble_gateway.quota_middleware import add_rate_limit_fields, quota_middleware
from scrobble_gateway.quotas import QuotaBuckets
from scrobble_gateway.request_ids import request_id_middleware
from scrobble_gateway.routing import is_admin_route, is_public
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.runtime import open_core, recover_forever, supervised
from scrobble_shared.settings import Settings

log = logging.getLogger("scrobble_gateway")

# Bodies are small JSON objects; nothing legitimate comes near this.
MAX_BODY_BYTES: Final = 64 * 1024
# Explicit limits on every call to a service (token exchange, validate-token, revoke).
HTTP_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)


def user_agent() -> str:
    try:
        version = importlib.metadata.version("revenge-scrobble")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"revenge-scrobble/{version} (+https://github.com/revenge-scrobble)"


def create_app(settings: Settings) -> web.Application:
    """The gateway app; refuses (SettingsError naming the setting) before any I/O when the
    token key or a way to check bearer tokens is missing."""
    settings.require("token_encryption_key")
    assert settings.token_encryption_key is not None
    cipher = TokenCipher(settings.token_encryption_key.get_secret_value())
    verifier = TokenVerifier.from_settings(settings, user_agent=user_agent())

    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            problem_middleware,
            auth_middleware(
                verifier, page.also_public(is_public), is_admin_route, session=page.api_caller
            ),
            quota_middleware,
        ],
    )
    app[SETTINGS] = settings
    app[CIPHER] = cipher
    app[CURSORS] = CursorSigner.from_settings(settings)
    app[QUOTAS] = QuotaBuckets.from_settings(settings)
    app.on_response_prepare.append(add_rate_limit_fields)
    app.cleanup_ctx.append(_core)
    app.cleanup_ctx.append(_http_client)
    app.cleanup_ctx.append(verifier.resources)  # the JWKS client, when there is one
    app.router.add_routes(health.routes)
    app.router.add_routes(openapi.routes)
    app.router.add_routes(api.routes)
    app.router.add_routes(imports.routes)
    app.router.add_routes(sources.routes)
    app.router.add_routes(connect.routes)
    app.router.add_routes(own_dead_letters.routes)
    page.setup(app, settings)
    return app


async def _core(app: web.Application) -> AsyncIterator[None]:
    """Pool, outbox producer and relay (publishing what a previous run left), and the
    periodic outbox recovery; closed in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        core = await open_core(stack, app[SETTINGS], "scrobble-gateway-outbox", pool_max=10)
        app[POOL], app[PRODUCER], app[RELAY] = core.pool, core.producer, core.relay
        supervised(stack).start("outbox-recovery", lambda: recover_forever(core.relay))
        yield


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    client = httpx.AsyncClient(
        timeout=HTTP_TIMEOUT, headers={"User-Agent": user_agent()}, follow_redirects=False
    )
    app[HTTP] = client
    try:
        yield
    finally:
        await client.aclose()
