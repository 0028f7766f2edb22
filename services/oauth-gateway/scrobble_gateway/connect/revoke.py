"""Revoking a user's tokens at the service when they disconnect.

Only Trakt offers it (``POST /oauth/revoke {token, client_id, client_secret}``; revoking
the access token ends its pair). The others have nothing to call: Simkl and AniList document
no revocation endpoint, a Last.fm session key is revoked by the user on last.fm, and a
ListenBrainz token is reset by the user on listenbrainz.org.

Best effort: a failure is logged (service, status or exception type; never the token) and
never raised, so a service that is down cannot keep anyone from disconnecting.
"""

from __future__ import annotations

import logging

import httpx
from aiohttp import web

from scrobble_gateway.connect import providers
from scrobble_gateway.keys import HTTP, SETTINGS

log = logging.getLogger(__name__)


async def revoke_at_service(
    app: web.Application, service: str, access_token: str | None, refresh_token: str | None
) -> None:
    if service != "trakt":
        log.debug("%s has no token revocation; nothing to call", service)
        return
    token = access_token or refresh_token
    if token is None:
        return
    settings = app[SETTINGS]
    if settings.missing_credentials("trakt"):
        log.warning("cannot revoke at trakt: no app credentials configured")
        return
    call = providers.trakt_revoke_request(providers.oauth_app(settings, "trakt"), token)
    try:
        answer = await app[HTTP].post(
            call.url, json=call.body, headers={"Accept": "application/json"}
        )
    except httpx.HTTPError as exc:
        log.warning("revoking at trakt failed (%s)", type(exc).__name__)
        return
    if answer.status_code >= 400:
        log.warning("revoking at trakt failed: HTTP %s", answer.status_code)
        return
    log.info("tokens revoked at trakt")
