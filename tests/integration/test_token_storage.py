"""Tokens at rest in the real database: unreadable in the raw column, readable with the
current key and with a rotated-out key listed second, a clear error with a wrong key."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from scrobble_shared.crypto import TokenCipher, TokenDecryptError
from scrobble_shared.db.connections import (
    ConnectionExists,
    NewConnection,
    create_connection,
    load_tokens,
    reencrypt_tokens,
)

pytestmark = pytest.mark.integration
ACCESS = "access-token-7f3a9c"
REFRESH = "refresh-token-1b2c3d"


def key() -> str:
    return Fernet.generate_key().decode()


async def test_token_is_not_readable_in_the_raw_column(database_url: str) -> None:
    cipher = TokenCipher(key())
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_connection(
            conn, cipher, NewConnection(uuid.uuid4(), "trakt", ACCESS, REFRESH)
        )
        raw = await conn.fetchrow(
            "SELECT access_token_enc, refresh_token_enc, row_to_json(c)::text AS everything "
            "FROM connections c WHERE id = $1",
            created.id,
        )
        assert raw is not None
        for secret in (ACCESS, REFRESH):
            assert secret.encode() not in raw["access_token_enc"]
            assert secret.encode() not in raw["refresh_token_enc"]
            assert secret not in raw["everything"]
        tokens = await load_tokens(conn, cipher, created.id)
        assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
        assert ACCESS not in repr(tokens)
    finally:
        await conn.close()


async def test_rotation_keeps_tokens_readable_and_rewrites_them(database_url: str) -> None:
    old, new = key(), key()
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_connection(
            conn, TokenCipher(old), NewConnection(uuid.uuid4(), "trakt", ACCESS, REFRESH)
        )
        rotating = TokenCipher(f"{new},{old}")
        assert (await load_tokens(conn, rotating, created.id)).access_token == ACCESS
        assert await reencrypt_tokens(conn, rotating) == 1
        only_new = TokenCipher(new)
        tokens = await load_tokens(conn, only_new, created.id)
        assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
        with pytest.raises(TokenDecryptError):
            await load_tokens(conn, TokenCipher(old), created.id)
    finally:
        await conn.close()


async def test_wrong_key_gives_a_clear_error(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_connection(
            conn, TokenCipher(key()), NewConnection(uuid.uuid4(), "lastfm", ACCESS)
        )
        with pytest.raises(TokenDecryptError, match="TOKEN_ENCRYPTION_KEY"):
            await load_tokens(conn, TokenCipher(key()), created.id)
    finally:
        await conn.close()


async def test_second_connection_to_the_same_service_is_refused(database_url: str) -> None:
    cipher = TokenCipher(key())
    conn = await asyncpg.connect(database_url)
    try:
        user = uuid.uuid4()
        await create_connection(conn, cipher, NewConnection(user, "simkl", ACCESS))
        with pytest.raises(ConnectionExists):
            await create_connection(conn, cipher, NewConnection(user, "simkl", ACCESS))
    finally:
        await conn.close()


async def test_connection_add_command_stores_encrypted_tokens(database_url: str) -> None:
    secret_key = key()
    user = str(uuid.uuid4())
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("scrobble")),
        *("connection", "add", "--user", user, "--service", "trakt"),
        *("--token", ACCESS, "--refresh-token", REFRESH, "--threshold", "90", "--sync-ratings"),
        env={**os.environ, "DATABASE_URL": database_url, "TOKEN_ENCRYPTION_KEY": secret_key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    connection_id = uuid.UUID(out.decode().strip())
    assert ACCESS not in (out + err).decode()

    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT user_id, scrobble_threshold_percent, sync_ratings, sync_watch_status "
            "FROM connections WHERE id = $1",
            connection_id,
        )
        assert row is not None
        assert str(row["user_id"]) == user
        assert row["scrobble_threshold_percent"] == 90
        assert (row["sync_ratings"], row["sync_watch_status"]) == (True, False)
        tokens = await load_tokens(conn, TokenCipher(secret_key), connection_id)
        assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
    finally:
        await conn.close()
