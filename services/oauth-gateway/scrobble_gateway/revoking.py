"""Disconnecting revokes the tokens at the service where it can, before they are deleted.

Revocation is best effort: a service that is down, or refuses, must not keep a user from
disconnecting; the tokens are deleted here either way and the failure is logged by its
kind only (exception messages can carry URLs with tokens in them).
"""

from __future__ import annotations

import logging

from aiohttp import web

from scrobble_gateway.connect.revoke import revoke_at_service
from scrobble_gateway.repository import StoredTokens

log = logging.getLogger(__name__)


async def revoke_quietly(app: web.Application, tokens: StoredTokens) -> None:
    if tokens.access_token is None and tokens.refresh_token is None:
        return
    try:
        await revoke_at_service(app, tokens.service, tokens.access_token, tokens.refresh_token)
    except Exception as exc:  # revoke_at_service logs its own failures; this is a backstop
        log.warning(
            "disconnect: revoking at %s failed (%s); deleting the tokens anyway",
            tokens.service,
            type(exc).__name__,
        )
