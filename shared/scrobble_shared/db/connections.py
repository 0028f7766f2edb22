"""The connections table: a user's link to one service, with its tokens encrypted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from scrobble_shared.crypto import TokenCipher
from scrobble_shared.settings import ServiceName

_PUBLIC_COLUMNS = """
    id, user_id, service, enabled, scrobble_threshold_percent, sync_watch_status,
    sync_ratings, last_sync_at, last_sync_status, status
"""
# Only the constant column list above is formatted into these statements.
_INSERT = f"""
    INSERT INTO connections (user_id, service, access_token_enc, refresh_token_enc,
        token_expires_at, scrobble_threshold_percent, sync_watch_status, sync_ratings,
        external_user_name)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING {_PUBLIC_COLUMNS}
"""  # noqa: S608
_SELECT_BY_ID = f"SELECT {_PUBLIC_COLUMNS} FROM connections WHERE id = $1"  # noqa: S608


class ConnectionExists(Exception):
    """The user already has a connection to this service."""


@dataclass(frozen=True)
class Connection:
    """A connection as the API shows it (the original design's ScrobbleConnection); no secrets."""

    id: UUID
    user_id: UUID
    service: str
    enabled: bool
    scrobble_threshold_percent: int
    sync_watch_status: bool
    sync_ratings: bool
    last_sync_at: datetime | None
    last_sync_status: str
    status: str


@dataclass(frozen=True)
class Tokens:
    access_token: str | None
    refresh_token: str | None
    expires_at: datetime | None
    version: int

    def __repr__(self) -> str:  # never let a token reach a log line through repr
        return f"Tokens(expires_at={self.expires_at!r}, version={self.version})"


@dataclass(frozen=True)
class NewConnection:
    user_id: UUID
    service: ServiceName
    access_token: str | None = None
    refresh_token: str | None = None
    token_expires_at: datetime | None = None
    scrobble_threshold_percent: int = 80
    sync_watch_status: bool = False
    sync_ratings: bool = False
    external_user_name: str | None = None


def _encrypt(cipher: TokenCipher, token: str | None) -> bytes | None:
    return None if token is None else cipher.encrypt(token)


async def create_connection(
    db: asyncpg.Connection | asyncpg.Pool, cipher: TokenCipher, new: NewConnection
) -> Connection:
    try:
        row = await db.fetchrow(
            _INSERT,
            new.user_id,
            new.service,
            _encrypt(cipher, new.access_token),
            _encrypt(cipher, new.refresh_token),
            new.token_expires_at,
            new.scrobble_threshold_percent,
            new.sync_watch_status,
            new.sync_ratings,
            new.external_user_name,
        )
    except asyncpg.UniqueViolationError:
        raise ConnectionExists(
            f"user {new.user_id} already has a {new.service} connection"
        ) from None
    assert row is not None
    return Connection(**dict(row))


async def get_connection(
    db: asyncpg.Connection | asyncpg.Pool, connection_id: UUID
) -> Connection | None:
    row = await db.fetchrow(_SELECT_BY_ID, connection_id)
    return None if row is None else Connection(**dict(row))


async def load_tokens(
    db: asyncpg.Connection | asyncpg.Pool, cipher: TokenCipher, connection_id: UUID
) -> Tokens:
    row = await db.fetchrow(
        """SELECT access_token_enc, refresh_token_enc, token_expires_at, token_version
           FROM connections WHERE id = $1""",
        connection_id,
    )
    if row is None:
        raise LookupError(f"no connection {connection_id}")
    access, refresh = row["access_token_enc"], row["refresh_token_enc"]
    return Tokens(
        access_token=None if access is None else cipher.decrypt(access),
        refresh_token=None if refresh is None else cipher.decrypt(refresh),
        expires_at=row["token_expires_at"],
        version=row["token_version"],
    )


async def reencrypt_tokens(db: asyncpg.Connection, cipher: TokenCipher) -> int:
    """Rewrite every stored token under the newest key (the last step of a key rotation)."""
    rotated = 0
    async with db.transaction():
        rows = await db.fetch(
            "SELECT id, access_token_enc, refresh_token_enc FROM connections "
            "WHERE access_token_enc IS NOT NULL FOR UPDATE"
        )
        for row in rows:
            refresh = row["refresh_token_enc"]
            await db.execute(
                "UPDATE connections SET access_token_enc = $2, refresh_token_enc = $3, "
                "updated_at = now() WHERE id = $1",
                row["id"],
                cipher.rotate(row["access_token_enc"]),
                None if refresh is None else cipher.rotate(refresh),
            )
            rotated += 1
    return rotated
