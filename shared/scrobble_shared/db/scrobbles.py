"""Queueing scrobble work: the ``scrobbles`` rows and, in the same transaction, an outbox
message for each row that was really new (``scrobble_shared.outbox`` publishes it after the
commit). Every writer of work uses this: ingest, the gateway's ``POST /queue``, the
importer's two-way sync and ingest's sweeper.

Idempotent: a row whose ``(connection_id, dedupe_key)`` exists already is not inserted and
gets no message, so a batch replayed after a crash queues nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from scrobble_shared.db import Conn
from scrobble_shared.outbox import OutboxMessage
from scrobble_shared.work_message import NewScrobble, WorkTopics


async def insert_scrobbles(conn: Conn, scrobbles: Sequence[NewScrobble]) -> set[uuid.UUID]:
    """Queue work; returns the ids really inserted (the rest already existed for that play)."""
    if not scrobbles:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO scrobbles (id, connection_id, user_id, service, dedupe_key, kind, play_id,
            source_event_id, content_type, content_id, request, occurred_at)
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
            $6::text[], $7::uuid[], $8::uuid[], $9::text[], $10::uuid[], $11::jsonb[],
            $12::timestamptz[])
        ON CONFLICT (connection_id, dedupe_key) DO NOTHING
        RETURNING id
        """,
        [s.id for s in scrobbles],
        [s.connection_id for s in scrobbles],
        [s.user_id for s in scrobbles],
        [s.service for s in scrobbles],
        [s.dedupe_key for s in scrobbles],
        [s.kind for s in scrobbles],
        [s.play_id for s in scrobbles],
        [s.source_event_id for s in scrobbles],
        [s.content_type for s in scrobbles],
        [s.content_id for s in scrobbles],
        [s.request_json for s in scrobbles],
        [s.occurred_at for s in scrobbles],
    )
    return {row["id"] for row in rows}


async def queue_scrobbles(
    conn: Conn, scrobbles: Sequence[NewScrobble], topics: WorkTopics
) -> tuple[list[OutboxMessage], dict[str, int]]:
    """Insert work rows; an outbox message for each row that was really new, and how many
    were queued per service. The caller writes the messages in its transaction."""
    inserted = await insert_scrobbles(conn, scrobbles)
    messages: list[OutboxMessage] = []
    queued: dict[str, int] = {}
    for row in scrobbles:
        if row.id in inserted:
            messages.append(
                OutboxMessage(
                    topic=topics.for_service(row.service),
                    key=str(row.connection_id).encode(),
                    value=row.request_bytes,
                    headers={"kind": row.kind},
                    message_id=str(row.id),
                )
            )
            queued[row.service] = queued.get(row.service, 0) + 1
    return messages, queued
