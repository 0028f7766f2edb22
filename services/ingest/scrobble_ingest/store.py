"""The ingest service's Postgres statements: few round trips per batch, all idempotent.

Each function takes an open connection inside the caller's transaction; multi-row writes
go through ``unnest`` of arrays, one statement per table per batch.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from typing import Any, Final

import asyncpg

from scrobble_ingest.plan import PlayKey, PlayWrite, Rejection
from scrobble_shared.db import Conn
from scrobble_shared.db.connections import connection_rules
from scrobble_shared.events import Action, PlaybackEvent
from scrobble_shared.plays import Play
from scrobble_shared.work import ConnectionRules
from scrobble_shared.work_message import dumps


async def record_new_events(conn: Conn, events: Sequence[PlaybackEvent]) -> set[uuid.UUID]:
    """Mark event ids processed; returns the ids that were not seen before (as UUIDs: the
    text of an id may be in either case)."""
    if not events:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO processed_events (event_id, user_id, occurred_at)
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[])
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
        """,
        [e.event_id for e in events],
        [e.user_id for e in events],
        [e.occurred_at for e in events],
    )
    return {row["event_id"] for row in rows}


async def load_connections(
    conn: Conn | asyncpg.Pool, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ConnectionRules]]:
    rows = await conn.fetch(
        """
        SELECT id, user_id, service, enabled, scrobble_threshold_percent, sync_watch_status,
               sync_ratings
        FROM connections WHERE user_id = ANY($1::uuid[])
        """,
        list(user_ids),
    )
    found: dict[uuid.UUID, list[ConnectionRules]] = {u: [] for u in user_ids}
    for row in rows:
        found[row["user_id"]].append(connection_rules(row))
    return found


# The play_sessions columns are named after the fields of Play, so rows map onto it.
PLAY_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Play))
PLAY_COLUMNS: Final = ", ".join(PLAY_FIELDS)


def play_from_row(row: asyncpg.Record) -> Play:
    values = {name: row[name] for name in PLAY_FIELDS}
    return Play(**{**values, "last_action": Action(row["last_action"])})


def json_value(raw: str | dict[str, Any]) -> dict[str, Any]:
    """asyncpg hands jsonb over as text unless a codec is set."""
    return raw if isinstance(raw, dict) else dict(json.loads(raw))


async def load_latest_plays(conn: Conn, keys: Sequence[PlayKey]) -> dict[PlayKey, Play]:
    """The newest play of each (user, content, session)."""
    if not keys:
        return {}
    rows = await conn.fetch(
        f"""
        SELECT DISTINCT ON (user_id, content_id, session_id) {PLAY_COLUMNS}
        FROM play_sessions
        WHERE (user_id, content_id, session_id) IN (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[]))
        ORDER BY user_id, content_id, session_id, play_number DESC
        """,  # noqa: S608 - only the constant column list is formatted in
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
    )
    return {(r["user_id"], r["content_id"], r["session_id"]): play_from_row(r) for r in rows}


async def save_plays(conn: Conn, writes: Sequence[PlayWrite]) -> None:
    """Insert new plays and update known ones (by user, content, session, number)."""
    if not writes:
        return
    plays = [w.play for w in writes]
    await conn.execute(
        """
        INSERT INTO play_sessions (id, user_id, content_id, content_type, session_id,
            play_number, started_at, last_event_at, last_action, start_position_ms,
            last_position_ms, max_position_ms, max_progress, duration_ms, counted_at,
            finished_at, content)
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
            $6::int[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::bigint[],
            $11::bigint[], $12::bigint[], $13::float8[], $14::bigint[], $15::timestamptz[],
            $16::timestamptz[], $17::jsonb[])
        ON CONFLICT (user_id, content_id, session_id, play_number) DO UPDATE SET
            last_event_at = EXCLUDED.last_event_at,
            last_action = EXCLUDED.last_action,
            last_position_ms = EXCLUDED.last_position_ms,
            max_position_ms = EXCLUDED.max_position_ms,
            max_progress = EXCLUDED.max_progress,
            duration_ms = EXCLUDED.duration_ms,
            counted_at = COALESCE(play_sessions.counted_at, EXCLUDED.counted_at),
            finished_at = COALESCE(play_sessions.finished_at, EXCLUDED.finished_at),
            touched_at = now()
        """,
        [p.id for p in plays],
        [p.user_id for p in plays],
        [p.content_id for p in plays],
        [w.content["type"] for w in writes],
        [p.session_id for p in plays],
        [p.play_number for p in plays],
        [p.started_at for p in plays],
        [p.last_event_at for p in plays],
        [p.last_action.value for p in plays],
        [p.start_position_ms for p in plays],
        [p.last_position_ms for p in plays],
        [p.max_position_ms for p in plays],
        [p.max_progress for p in plays],
        [p.duration_ms for p in plays],
        [p.counted_at for p in plays],
        [p.finished_at for p in plays],
        [dumps(w.content).decode() for w in writes],
    )


async def record_rejections(conn: Conn, rejections: Sequence[Rejection]) -> list[Rejection]:
    """Remember dead-lettered positions; returns those not dead-lettered before."""
    if not rejections:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO rejected_records (source_topic, source_partition, source_offset,
            error_class, error_message)
        SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[])
        ON CONFLICT DO NOTHING
        RETURNING source_topic, source_partition, source_offset
        """,
        [r.record.topic for r in rejections],
        [r.record.partition for r in rejections],
        [r.record.offset for r in rejections],
        [r.error_class for r in rejections],
        # Postgres text cannot hold NUL; the message is for people, so drop them.
        [r.error_message.replace("\x00", "") for r in rejections],
    )
    fresh = {(r["source_topic"], r["source_partition"], r["source_offset"]) for r in rows}
    return [r for r in rejections if (r.record.topic, r.record.partition, r.record.offset) in fresh]
