"""One Postgres database per test, cloned from a migrated template so each starts clean."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import asyncpg

from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.migrate import apply_migrations


def with_database(dsn: str, name: str) -> str:
    return urlsplit(dsn)._replace(path=f"/{name}").geturl()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def create_database(admin_dsn: str, name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        clause = f" TEMPLATE {template}" if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return with_database(admin_dsn, name)


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_migrated_database(admin_dsn: str, name: str) -> str:
    """A new database with the current schema; returns its DSN."""
    dsn = await create_database(admin_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


async def create_migrated_template(admin_dsn: str) -> str:
    name = unique_name("tpl")
    await create_migrated_database(admin_dsn, name)
    return name


async def fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    """The rows of one query, on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def insert_connection(
    dsn: str, cipher: TokenCipher, user: uuid.UUID, service: str, token: str
) -> None:
    """A connection of ``user`` to ``service`` holding ``token`` (encrypted with ``cipher``)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO connections (user_id, service, access_token_enc) VALUES ($1, $2, $3)",
            user,
            service,
            cipher.encrypt(token),
        )
    finally:
        await conn.close()
