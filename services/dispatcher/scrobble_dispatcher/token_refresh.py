"""An access token worth using, refreshed first when need be (Trakt): the I/O around the
pure rules of ``tokens.py``, the one refresh path that delivery and history imports share.

:meth:`TokenRefresher.usable` either hands back the connection with a token to use (the
stored one, or a new pair already persisted with compare-and-set) or says why there is
none now (:class:`NoToken`): come back at ``retry_at`` (a refresh in flight elsewhere, the
token endpoint busy), the user must reconnect (``retry_at`` None; the connection is
already marked so when the service refused), or no configured key opens the tokens
(``unreadable``; the caller marks it, as it does for the access token). What the caller
does with the piece of work it holds (put it back, fail an import) stays the caller's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from scrobble_dispatcher import repository, tokens
from scrobble_dispatcher.clients.base import AppCredentials
from scrobble_dispatcher.transport import ClientSet, TransportFailure, send
from scrobble_shared.crypto import TokenCipher, TokenDecryptError
from scrobble_shared.db.connections import UNREADABLE_TOKENS_REASON
from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings

log = logging.getLogger(__name__)

IN_PROGRESS_REASON = "a token refresh is in progress"


def refresh_configs(
    settings: Settings, services: list[ServiceName]
) -> dict[str, tokens.RefreshConfig]:
    """Token refresh per service that has it (Trakt; the others' tokens do not expire)."""
    if "trakt" not in services:
        return {}
    auth_url = settings.service("trakt").auth_url or settings.trakt_auth_url
    app = AppCredentials.from_settings(settings, "trakt")
    config = tokens.RefreshConfig.trakt(auth_url, app, settings.trakt_redirect_uri)
    return {"trakt": config}


@dataclass(frozen=True)
class NoToken:
    """No access token to use now, and why."""

    reason: str
    # When to try again; None: not before the user connects again.
    retry_at: datetime | None
    # No configured key opens the connection's tokens (nothing was called).
    unreadable: bool = False


class TokenRefresher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        http: Mapping[Any, ClientSet],
        lease: timedelta = tokens.REFRESH_LEASE,
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._http = http
        self._lease = lease

    async def usable(
        self,
        connection_id: uuid.UUID,
        service: str,
        state: repository.ConnectionState,
        config: tokens.RefreshConfig,
        rejected_version: int | None,
    ) -> repository.ConnectionState | NoToken:
        """The connection with an access token worth using, refreshed if it has expired or
        the service refused the one of ``rejected_version`` (None before any call)."""
        async with self._pool.acquire() as conn:
            if rejected_version is not None:  # another replica may have refreshed already
                fresh = await repository.connection_state(conn, self._cipher, connection_id)
                if fresh is not None and fresh.unreadable:
                    return NoToken(UNREADABLE_TOKENS_REASON, None, unreadable=True)
                if fresh is None or fresh.token is None or fresh.status != "active":
                    return NoToken("the connection changed during the call", None)
                state = fresh
            now = await repository.db_now(conn)
        decision = tokens.decide(
            state.tokens, now, rejected_version=rejected_version, lease=self._lease
        )
        if decision is tokens.Decision.USE:
            return state
        if decision is tokens.Decision.WAIT:
            return NoToken(IN_PROGRESS_REASON, now + tokens.REFRESH_IN_FLIGHT_WAIT)
        if decision is tokens.Decision.RECONNECT:
            reason = f"{config.service_label} access token expired and there is no refresh token"
            async with self._pool.acquire() as conn:
                await repository.mark_needs_reconnect(conn, connection_id, reason)
            return NoToken(reason, None)
        return await self._refresh(
            connection_id,
            service,
            state,
            config,
            interrupted=decision is tokens.Decision.RECOVER,
        )

    async def _refresh(
        self,
        connection_id: uuid.UUID,
        service: str,
        state: repository.ConnectionState,
        config: tokens.RefreshConfig,
        *,
        interrupted: bool,
    ) -> repository.ConnectionState | NoToken:
        """Mark in flight (committed), spend the refresh token, persist the new pair with
        compare-and-set before anything uses it."""
        from_version = state.tokens.version
        try:
            async with self._pool.acquire() as conn:
                refresh_token = await repository.begin_refresh(
                    conn, self._cipher, connection_id, from_version, self._lease
                )
        except TokenDecryptError:
            return NoToken(UNREADABLE_TOKENS_REASON, None, unreadable=True)
        if refresh_token is None:  # another process got there first, or the tokens changed
            return NoToken(IN_PROGRESS_REASON, datetime.now(UTC) + tokens.REFRESH_IN_FLIGHT_WAIT)
        request = tokens.build_refresh(config, refresh_token)
        try:
            async with self._http[service].one() as http:
                response = await send(http, request)
        except TransportFailure as exc:
            result: tokens.RefreshResult = tokens.NotNow(str(exc), None, spent_maybe=True)
        else:
            result = tokens.parse_refresh(response, datetime.now(UTC), config)
        if not isinstance(result, tokens.NewTokens):
            result = result.scrubbed(request.secrets())
        if isinstance(result, tokens.NewTokens):
            async with self._pool.acquire() as conn:
                version = await repository.persist_refreshed_tokens(
                    conn, self._cipher, connection_id, from_version, result
                )
            if version is None:
                at = datetime.now(UTC) + tokens.REFRESH_IN_FLIGHT_WAIT
                return NoToken("tokens replaced during a refresh", at)
            log.info("refreshed %s tokens of connection %s", service, connection_id)
            return replace(
                state,
                token=result.access_token,
                tokens=tokens.TokenState(
                    version=version, expires_at=result.expires_at, has_refresh_token=True
                ),
            )
        if isinstance(result, tokens.Refused):
            reason = tokens.refused_reason(result, interrupted=interrupted)
            async with self._pool.acquire() as conn:
                await repository.refresh_refused(conn, connection_id, from_version, reason)
            log.info("refresh refused: %s connection %s", service, connection_id)
            return NoToken(reason, None)
        if result.spent_maybe:
            # The mark stays: once its lease has run out the next attempt recovers.
            return NoToken(result.reason, datetime.now(UTC) + self._lease + timedelta(seconds=1))
        async with self._pool.acquire() as conn:
            await repository.end_refresh(conn, connection_id, from_version)
        after = timedelta(seconds=result.retry_after_s or 0)
        return NoToken(result.reason, datetime.now(UTC) + max(tokens.REFRESH_RETRY_WAIT, after))
