"""The ``sources`` and ``source_users`` tables: media servers and their users' mappings.

Used by the intake (finding a source by the secret a webhook carries), by the gateway's
``/api/v1/scrobble/sources`` routes and by ``scrobble source``. Every statement that a user
can reach takes a scope: ``ANY_OWNER`` (an admin, the CLI) or one user's id, in SQL, so a
source of someone else's is simply not found. A secret is returned only by the two calls
that make one (:func:`create_source`, :func:`rotate_secret`); nothing reads it back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

import asyncpg

from scrobble_shared.db import Conn
from scrobble_shared.sources import (
    Source,
    SourceFilters,
    SourceKind,
    new_secret,
    same_secret,
    secret_hash,
    server_user_key,
)

ANY_OWNER: Final = "any"
Scope = UUID | Literal["any"]

# Only constant text is formatted into the statements below.
_COLUMNS: Final = """
    s.id, s.kind, s.name, s.owner_id, s.filters, s.secret_hash, s.created_at, s.updated_at,
    coalesce((SELECT json_object_agg(u.server_user, u.user_id) FROM source_users u
              WHERE u.source_id = s.id), '{}') AS mappings
"""
_IN_SCOPE: Final = "($2::uuid IS NULL OR s.owner_id = $2)"


class SourceRefused(Exception):
    """A change the rules do not allow; the message says which (a 4xx, not a 500)."""


def checked_name(name: str) -> str:
    """A source's name as stored: trimmed, 1 to 200 characters, no NUL (Postgres text
    cannot hold one); else :class:`SourceRefused` saying which."""
    trimmed = name.strip()
    if not 1 <= len(trimmed) <= 200:
        raise SourceRefused("name must be 1 to 200 characters")
    if "\x00" in trimmed:
        raise SourceRefused("name must not contain NUL characters")
    return trimmed


def _owner(scope: Scope) -> UUID | None:
    return None if scope == ANY_OWNER else scope


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _source(row: asyncpg.Record) -> Source:
    mappings = {key: UUID(str(user)) for key, user in _json(row["mappings"]).items()}
    return Source(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        owner_id=row["owner_id"],
        filters=SourceFilters.model_validate(_json(row["filters"])),
        mappings=mappings,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def create_source(
    conn: Conn,
    kind: SourceKind,
    name: str,
    owner_id: UUID | None,
    filters: SourceFilters | None = None,
) -> tuple[Source, str]:
    """A new source and its secret (shown to the caller once, never stored)."""
    secret = new_secret()
    row = await conn.fetchrow(
        "INSERT INTO sources (kind, name, owner_id, secret_hash, filters) "
        "VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
        kind,
        checked_name(name),
        owner_id,
        secret_hash(secret),
        (filters or SourceFilters()).model_dump_json(),
    )
    assert row is not None
    found = await get_source(conn, row["id"], ANY_OWNER)
    assert found is not None
    return found, secret


async def list_sources(
    conn: Conn,
    scope: Scope,
    *,
    limit: int = 1000,
    after: tuple[datetime, UUID] | None = None,
) -> list[Source]:
    """Sources in the scope, oldest first: ``limit`` of them after the position ``after``
    (the creation time and id of the last one seen, which need not exist any more)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM sources s WHERE {_IN_SCOPE} "  # noqa: S608
        "AND ($3::timestamptz IS NULL OR (s.created_at, s.id) > ($3, $4::uuid)) "
        "ORDER BY s.created_at, s.id LIMIT $1",
        limit,
        _owner(scope),
        None if after is None else after[0],
        None if after is None else after[1],
    )
    return [_source(r) for r in rows]


async def get_source(conn: Conn, source_id: UUID, scope: Scope) -> Source | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM sources s WHERE s.id = $1 AND {_IN_SCOPE}",  # noqa: S608
        source_id,
        _owner(scope),
    )
    return None if row is None else _source(row)


async def source_by_secret(conn: Conn, secret: str) -> Source | None:
    """The source a webhook's secret names, or None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM sources s WHERE s.secret_hash = $1",  # noqa: S608
        secret_hash(secret),
    )
    if row is None or not same_secret(bytes(row["secret_hash"]), secret):
        return None
    return _source(row)


async def update_source(
    conn: Conn,
    source_id: UUID,
    scope: Scope,
    *,
    name: str | None = None,
    filters: SourceFilters | None = None,
) -> Source | None:
    """Rename it and/or replace its filters; None when not found in the scope."""
    updated = await conn.fetchval(
        "UPDATE sources s SET name = coalesce($3, name), "  # noqa: S608
        "filters = coalesce($4::jsonb, filters), updated_at = now() "
        f"WHERE s.id = $1 AND {_IN_SCOPE} RETURNING id",
        source_id,
        _owner(scope),
        None if name is None else checked_name(name),
        None if filters is None else filters.model_dump_json(),
    )
    return None if updated is None else await get_source(conn, source_id, ANY_OWNER)


async def delete_source(conn: Conn, source_id: UUID, scope: Scope) -> bool:
    result = await conn.execute(
        f"DELETE FROM sources s WHERE s.id = $1 AND {_IN_SCOPE}",  # noqa: S608
        source_id,
        _owner(scope),
    )
    return result.endswith(" 1")


async def rotate_secret(conn: Conn, source_id: UUID, scope: Scope) -> tuple[Source, str] | None:
    """A new secret for the source; the old one is refused from now on."""
    secret = new_secret()
    updated = await conn.fetchval(
        "UPDATE sources s SET secret_hash = $3, secret_rotated_at = now(), updated_at = now() "  # noqa: S608
        f"WHERE s.id = $1 AND {_IN_SCOPE} RETURNING id",
        source_id,
        _owner(scope),
        secret_hash(secret),
    )
    if updated is None:
        return None
    found = await get_source(conn, source_id, ANY_OWNER)
    assert found is not None
    return found, secret


async def map_server_user(
    conn: Conn, source_id: UUID, scope: Scope, server_user: str, user_id: UUID
) -> Source | None:
    """Map a server user (id or name) onto our user, replacing an earlier mapping of it."""
    key = server_user_key(server_user)
    if not key:
        raise SourceRefused("server_user must not be empty")
    if len(key) > 256:
        raise SourceRefused("server_user must be at most 256 characters")
    if "\x00" in key:
        raise SourceRefused("server_user must not contain NUL characters")
    async with conn.transaction():
        if not await _lock(conn, source_id, scope):
            return None
        await conn.execute(
            "INSERT INTO source_users (source_id, server_user, user_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (source_id, server_user) DO UPDATE SET user_id = EXCLUDED.user_id",
            source_id,
            key,
            user_id,
        )
        await conn.execute("UPDATE sources SET updated_at = now() WHERE id = $1", source_id)
    return await get_source(conn, source_id, ANY_OWNER)


async def unmap_server_user(
    conn: Conn, source_id: UUID, scope: Scope, server_user: str
) -> Source | None:
    """Remove a mapping; None when the source is not found in the scope."""
    async with conn.transaction():
        if not await _lock(conn, source_id, scope):
            return None
        await conn.execute(
            "DELETE FROM source_users WHERE source_id = $1 AND server_user = $2",
            source_id,
            server_user_key(server_user),
        )
        await conn.execute("UPDATE sources SET updated_at = now() WHERE id = $1", source_id)
    return await get_source(conn, source_id, ANY_OWNER)


async def _lock(conn: Conn, source_id: UUID, scope: Scope) -> bool:
    """Lock the source's row for this transaction (a delete waits, rather than racing the
    mapping's insert into a foreign-key error); False when not found in the scope."""
    found = await conn.fetchval(
        f"SELECT s.id FROM sources s WHERE s.id = $1 AND {_IN_SCOPE} FOR UPDATE",  # noqa: S608
        source_id,
        _owner(scope),
    )
    return found is not None
