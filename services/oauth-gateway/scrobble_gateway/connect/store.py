"""Storing what a finished flow brought: a new connection, or new tokens for the user's
existing connection to the same service (reconnecting), always encrypted by the cipher."""

from __future__ import annotations

import uuid
from typing import Final

import asyncpg

from scrobble_gateway.connect.providers import IssuedTokens
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import ConnectionExists, NewConnection, create_connection
from scrobble_shared.service_names import ServiceName

# A reconnect replaces the tokens, bumps token_version (so an in-flight refresh of the old
# pair cannot overwrite them), forgets any refresh mark, and makes the connection usable;
# a last sync status that asked for the reconnect now says it happened (the next delivery
# writes its own).
_REPLACE_TOKENS: Final = """
    UPDATE connections SET
        access_token_enc = $3, refresh_token_enc = $4, token_expires_at = $5,
        external_user_name = COALESCE($6, external_user_name),
        token_version = token_version + 1,
        refresh_started_at = NULL, refresh_from_version = NULL,
        status = 'active', status_reason = NULL, updated_at = now(),
        last_sync_status = CASE WHEN last_sync_status LIKE 'needs reconnect:%'
            THEN 'reconnected' ELSE last_sync_status END
    WHERE user_id = $1 AND service = $2
    RETURNING id
"""


async def save_connection(
    pool: asyncpg.Pool,
    cipher: TokenCipher,
    *,
    user_id: uuid.UUID,
    service: ServiceName,
    tokens: IssuedTokens,
) -> uuid.UUID:
    """The id of the connection now holding ``tokens``: created, or updated in place."""
    new = NewConnection(
        user_id=user_id,
        service=service,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
        external_user_name=tokens.user_name,
    )
    # Twice at most: a disconnect between the failed insert and the update frees the slot.
    for _ in range(2):
        try:
            created = await create_connection(pool, cipher, new)
            return created.id
        except ConnectionExists:
            found = await pool.fetchval(
                _REPLACE_TOKENS,
                user_id,
                service,
                cipher.encrypt(tokens.access_token),
                None if tokens.refresh_token is None else cipher.encrypt(tokens.refresh_token),
                tokens.expires_at,
                tokens.user_name,
            )
            if found is not None:
                return uuid.UUID(str(found))
    raise RuntimeError(f"could not store the {service} connection")
