"""Revoking a user's tokens at the service when they disconnect.

Only a tracker whose connect flow declares a revocation call offers it (Trakt's
``POST /oauth/revoke``); for the others there is nothing to call (their folders say why).

Best effort: a failure is logged (service, status or exception type; never the token) and
never raised, so a service that is down cannot keep anyone from disconnecting.
"""

from __future__ import annotations

import logging

import httpx
from aiohttp import web

from scrobble_gateway.connect import providers
from scrobble_gateway.keys import HTTP, SETTINGS
from scrobble_shared.trackers.connect import AuthorizationCode

log = logging.getLogger(__name__)


async def revoke_at_service(
    app: web.Application, service: str, access_token: str | None, refresh_token: str | None
) -> None:
    flow = providers.flow(service)
    if not isinstance(flow, AuthorizationCode) or flow.revoke is None:
        log.debug("%s has no token revocation; nothing to call", service)
        return
    token = access_token or refresh_token
    if token is None:
        return
    settings = app[SETTINGS]
    if settings.missing_credentials(service):
        log.warning("cannot revoke at %s: no app credentials configured", service)
        return
    call = flow.revoke(providers.oauth_app(settings, service), token)
    try:
        answer = await app[HTTP].post(
            call.url, json=call.body, headers={"Accept": "application/json"}
        )
    except httpx.HTTPError as exc:
        log.warning("revoking at %s failed (%s)", service, type(exc).__name__)
        return
    if answer.status_code >= 400:
        log.warning("revoking at %s failed: HTTP %s", service, answer.status_code)
        return
    log.info("tokens revoked at %s", service)
