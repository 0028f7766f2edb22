"""The gateway's Postgres statements. Every user-facing query is scoped by the caller's
user id in SQL, so another user's row is simply not found (404, exactly as a missing one).

Rows come back as plain dicts ready for JSON: tokens are never selected here except by
:func:`delete_connection`, which hands them to the revoke call and drops them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeAlias

import asyncpg

from scrobble_gateway.pagination import Position
from scrobble_shared.crypto import TokenCipher, TokenDecryptError
from scrobble_shared.db import Conn

Row = dict[str, Any]
Db: TypeAlias = "Conn | asyncpg.Pool"

CONNECTION_COLUMNS: Final = (
    "id, user_id, service, enabled, scrobble_threshold_percent, sync_watch_status, "
    "sync_ratings, last_sync_at, last_sync_status, status, status_reason, external_user_name"
)
HISTORY_COLUMNS: Final = (
    "id, connection_id, service, kind, status, attempts, last_error, last_http_status, "
    "occurred_at, created_at, updated_at, sent_at, next_attempt_at, request"
)
IMPORTED_COLUMNS: Final = (
    "id, connection_id, service, kind, content_type, item_key, title, external_ids, "
    "occurred_at, rating, progress, imported_at"
)
DEAD_COLUMNS: Final = (
    "id, connection_id, user_id, service, kind, attempts, last_error, last_http_status, "
    "occurred_at, created_at, updated_at, request"
)
SCROBBLE_STATUSES: Final = ("queued", "sending", "retrying", "sent", "failed", "dead")


def _json_column(value: Any) -> Any:
    # asyncpg hands jsonb over as text unless a codec is set on the connection.
    return json.loads(value) if isinstance(value, str) else value


def _row(record: asyncpg.Record, json_columns: tuple[str, ...] = ()) -> Row:
    row = dict(record)
    for name in json_columns:
        row[name] = _json_column(row[name])
    return row


# --- connections ------------------------------------------------------------------------


async def list_connections(db: Db, user_id: uuid.UUID) -> list[Row]:
    records = await db.fetch(
        f"SELECT {CONNECTION_COLUMNS} FROM connections WHERE user_id = $1 "  # noqa: S608
        "ORDER BY created_at, id",
        user_id,
    )
    return [_row(r) for r in records]


async def get_connection(db: Db, user_id: uuid.UUID, connection_id: uuid.UUID) -> Row | None:
    record = await db.fetchrow(
        f"SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1 AND user_id = $2",  # noqa: S608
        connection_id,
        user_id,
    )
    return None if record is None else _row(record)


# Only these columns may be changed through the API; names are never taken from input.
SETTINGS_COLUMNS: Final = (
    "enabled",
    "scrobble_threshold_percent",
    "sync_watch_status",
    "sync_ratings",
)


async def update_connection(
    db: Db, user_id: uuid.UUID, connection_id: uuid.UUID, changes: Mapping[str, Any]
) -> Row | None:
    columns = [c for c in SETTINGS_COLUMNS if c in changes]
    if not columns:
        return await get_connection(db, user_id, connection_id)
    assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=3))
    record = await db.fetchrow(
        f"UPDATE connections SET {assignments}, updated_at = now() "  # noqa: S608
        f"WHERE id = $1 AND user_id = $2 RETURNING {CONNECTION_COLUMNS}",
        connection_id,
        user_id,
        *(changes[c] for c in columns),
    )
    return None if record is None else _row(record)


@dataclass(frozen=True)
class StoredTokens:
    """A connection's service and its tokens, decrypted, for the revoke call."""

    service: str
    access_token: str | None
    refresh_token: str | None

    def __repr__(self) -> str:  # never let a token reach a log line through repr
        return f"StoredTokens(service={self.service!r})"


async def connection_tokens(
    db: Db, cipher: TokenCipher, user_id: uuid.UUID, connection_id: uuid.UUID
) -> StoredTokens | None:
    """The caller's connection's tokens; None when it is not theirs or does not exist.
    Tokens that no configured key decrypts come back as None: nothing to revoke with."""
    record = await db.fetchrow(
        "SELECT service, access_token_enc, refresh_token_enc FROM connections "
        "WHERE id = $1 AND user_id = $2",
        connection_id,
        user_id,
    )
    if record is None:
        return None
    access, refresh = record["access_token_enc"], record["refresh_token_enc"]
    try:
        return StoredTokens(
            service=record["service"],
            access_token=None if access is None else cipher.decrypt(access),
            refresh_token=None if refresh is None else cipher.decrypt(refresh),
        )
    except TokenDecryptError:
        return StoredTokens(record["service"], None, None)


async def delete_connection(conn: Conn, user_id: uuid.UUID, connection_id: uuid.UUID) -> bool:
    """Delete the connection with its encrypted tokens; its work, imports and the user's
    pending OAuth states for that service go with it. Inside the caller's transaction."""
    service = await conn.fetchval(
        "DELETE FROM connections WHERE id = $1 AND user_id = $2 RETURNING service",
        connection_id,
        user_id,
    )
    if service is None:
        return False
    await conn.execute(
        "DELETE FROM oauth_states WHERE user_id = $1 AND service = $2", user_id, service
    )
    return True


# --- history, imports, dead letters -----------------------------------------------------


def _after(position: Position | None, column: str, first_param: int) -> tuple[str, list[Any]]:
    """The keyset condition of a newest-first page that continues after ``position``."""
    if position is None:
        return "", []
    clause = f" AND ({column}, id) < (${first_param}, ${first_param + 1})"
    return clause, [position.at, position.id]


async def history_page(
    db: Db,
    user_id: uuid.UUID,
    *,
    connection_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    after: Position | None,
) -> list[Row]:
    """Newest first by creation; one row more than ``limit`` tells that a next page exists."""
    clause, extra = _after(after, "created_at", 5)
    records = await db.fetch(
        f"SELECT {HISTORY_COLUMNS} FROM scrobbles "  # noqa: S608 - constant columns and clause
        "WHERE user_id = $1 AND ($2::uuid IS NULL OR connection_id = $2) "
        f"AND ($3::text IS NULL OR status = $3){clause} "
        "ORDER BY created_at DESC, id DESC LIMIT $4",
        user_id,
        connection_id,
        status,
        limit + 1,
        *extra,
    )
    return [_row(r, ("request",)) for r in records]


async def scrobbles_by_ids(db: Db, ids: list[uuid.UUID]) -> list[Row]:
    records = await db.fetch(
        f"SELECT {HISTORY_COLUMNS} FROM scrobbles "  # noqa: S608 - constant columns
        "WHERE id = ANY($1::uuid[]) ORDER BY created_at, id",
        ids,
    )
    return [_row(r, ("request",)) for r in records]


async def imported_page(
    db: Db,
    user_id: uuid.UUID,
    *,
    connection_id: uuid.UUID | None,
    limit: int,
    after: Position | None,
) -> list[Row]:
    clause, extra = _after(after, "imported_at", 4)
    records = await db.fetch(
        f"SELECT {IMPORTED_COLUMNS} FROM imported_items "  # noqa: S608 - constant columns
        f"WHERE user_id = $1 AND ($2::uuid IS NULL OR connection_id = $2){clause} "
        "ORDER BY imported_at DESC, id DESC LIMIT $3",
        user_id,
        connection_id,
        limit + 1,
        *extra,
    )
    return [_row(r, ("external_ids",)) for r in records]


async def dead_page(
    db: Db,
    *,
    service: str | None,
    limit: int,
    after: Position | None,
    user_id: uuid.UUID | None = None,
) -> list[Row]:
    """Dead work of every user (or of ``user_id``), oldest death first (the order an
    operator works through)."""
    clause = ""
    extra: list[Any] = []
    if after is not None:
        clause = " AND (updated_at, id) > ($4, $5)"
        extra = [after.at, after.id]
    records = await db.fetch(
        f"SELECT {DEAD_COLUMNS} FROM scrobbles "  # noqa: S608 - constant columns and clause
        "WHERE status = 'dead' AND ($1::text IS NULL OR service = $1) "
        f"AND ($3::uuid IS NULL OR user_id = $3){clause} "
        "ORDER BY updated_at, id LIMIT $2",
        service,
        limit + 1,
        user_id,
        *extra,
    )
    return [_row(r, ("request",)) for r in records]


def page_end(rows: list[Row], limit: int, column: str) -> tuple[list[Row], Position | None]:
    """The rows of this page and, when more follow, the position the next page starts after."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    at: datetime = last[column]
    return rows, Position(at, last["id"])
