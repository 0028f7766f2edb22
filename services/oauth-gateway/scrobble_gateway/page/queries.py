"""The page's reads that the API's repository does not already have. Like the repository,
every query is scoped by the user in SQL: another user's rows are simply not there."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any, Final

import asyncpg

from scrobble_gateway.imports import JOB_COLUMNS
from scrobble_gateway.pagination import Position
from scrobble_gateway.repository import DEAD_COLUMNS, Db, Row

# Plays not heard of for this long are not "now playing", whatever their state.
NOW_PLAYING_WINDOW: Final = timedelta(minutes=30)


def _row(record: asyncpg.Record, json_column: str) -> Row:
    row = dict(record)
    # asyncpg hands jsonb over as text unless a codec is set on the connection.
    if isinstance(row[json_column], str):
        row[json_column] = json.loads(row[json_column])
    return row


async def last_deliveries(db: Db, user_id: uuid.UUID) -> dict[uuid.UUID, Row]:
    """connection id -> the newest work of it that was delivered (``sent_at``, ``kind``)."""
    records = await db.fetch(
        """SELECT c.id AS connection_id, last.sent_at, last.kind
           FROM connections c
           JOIN LATERAL (
               SELECT s.sent_at, s.kind FROM scrobbles s
               WHERE s.user_id = c.user_id AND s.connection_id = c.id AND s.status = 'sent'
               ORDER BY s.created_at DESC, s.id DESC LIMIT 1
           ) last ON true
           WHERE c.user_id = $1""",
        user_id,
    )
    return {r["connection_id"]: dict(r) for r in records}


async def now_playing(
    db: Db, user_id: uuid.UUID, window: timedelta = NOW_PLAYING_WINDOW, limit: int = 10
) -> list[Row]:
    """The user's plays that have not ended and were heard of within ``window``."""
    records = await db.fetch(
        """SELECT id, content, content_type, started_at, last_event_at, last_action,
               max_progress, duration_ms, last_position_ms
           FROM play_sessions
           WHERE user_id = $1 AND finished_at IS NULL AND last_action <> 'stop'
               AND touched_at > now() - $2::interval
           ORDER BY last_event_at DESC, id DESC LIMIT $3""",
        user_id,
        window,
        limit,
    )
    return [_row(r, "content") for r in records]


async def problems_page(
    db: Db,
    user_id: uuid.UUID | None,
    *,
    status: str,
    limit: int,
    after: Position | None,
) -> list[Row]:
    """Dead (or failed) work, newest first: the user's, or everyone's when ``user_id`` is
    None (admins). One row more than ``limit`` tells that a next page exists."""
    clause, extra = "", []
    if after is not None:
        clause, extra = " AND (updated_at, id) < ($4, $5)", [after.at, after.id]
    records = await db.fetch(
        f"SELECT {DEAD_COLUMNS} FROM scrobbles "  # noqa: S608 - constant columns and clause
        f"WHERE status = $1 AND ($2::uuid IS NULL OR user_id = $2){clause} "
        "ORDER BY updated_at DESC, id DESC LIMIT $3",
        status,
        user_id,
        limit + 1,
        *extra,
    )
    return [_row(r, "request") for r in records]


async def count_dead(db: Db, user_id: uuid.UUID | None) -> int:
    count: Any = await db.fetchval(
        "SELECT count(*) FROM scrobbles WHERE status = 'dead' "
        "AND ($1::uuid IS NULL OR user_id = $1)",
        user_id,
    )
    return int(count)


async def latest_jobs(db: Db, user_id: uuid.UUID) -> dict[uuid.UUID, Row]:
    """connection id -> its newest import job."""
    records = await db.fetch(
        f"SELECT DISTINCT ON (connection_id) {JOB_COLUMNS} FROM import_jobs "  # noqa: S608
        "WHERE user_id = $1 ORDER BY connection_id, created_at DESC, id DESC",
        user_id,
    )
    return {r["connection_id"]: dict(r) for r in records}
