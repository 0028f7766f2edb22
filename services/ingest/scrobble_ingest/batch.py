"""One batch of playback records through Postgres: the ingest service's unit of work.

Everything a batch decides is written in one transaction: the event ids it has now seen,
the plays it moved, the scrobble work it queued, the records it rejected, and an outbox
row for every message that must go out because of it. Only after that commit are the
messages published (``outbox.py``) and the Kafka offsets committed (``consumer.py``).
A batch seen twice (redelivery after a crash) finds its event ids and record positions
already known and its dedupe keys already taken, so it writes and announces nothing new.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from scrobble_ingest import store
from scrobble_ingest.plan import (
    DUPLICATE,
    Accepted,
    Plan,
    Record,
    Rejection,
    as_uuid,
    dead_letter_headers,
    decode,
    is_play_event,
    plan_batch,
    play_key,
    unique_by_event_id,
    work_message,
)
from scrobble_shared.db import Conn
from scrobble_shared.outbox import OutboxMessage, insert_outbox_messages
from scrobble_shared.plays import DEFAULT_SILENCE
from scrobble_shared.work import ConnectionRules, Work

ConnectionLookup = Callable[
    [Conn, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, list[ConnectionRules]]]
]


@dataclass(frozen=True)
class Topics:
    """Where the ingest service writes."""

    dead_letters: str
    service_prefix: str

    def for_service(self, service: str) -> str:
        return f"{self.service_prefix}{service}"


@dataclass
class BatchResult:
    # The outbox rows written, by id: published from here after the commit.
    outbox: dict[int, OutboxMessage] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    queued: dict[str, int] = field(default_factory=dict)


def _dead_letter(rejection: Rejection, topic: str) -> OutboxMessage:
    record = rejection.record
    return OutboxMessage(
        topic=topic,
        key=record.key,
        value=record.value or b"",
        headers=dead_letter_headers(rejection),
        message_id=f"dlq:{record.topic}:{record.partition}:{record.offset}",
    )


def new_scrobble(
    work: Work, user_id: uuid.UUID, content: dict[str, Any], source_event_id: uuid.UUID | None
) -> store.NewScrobble:
    scrobble_id = uuid.uuid4()
    return store.NewScrobble(
        id=scrobble_id,
        connection_id=work.connection_id,
        user_id=user_id,
        service=work.service,
        dedupe_key=work.dedupe_key,
        kind=work.kind.value,
        play_id=work.play_id,
        source_event_id=source_event_id,
        content_type=content["type"],
        content_id=as_uuid(content["id"]),
        request=work_message(scrobble_id, work, user_id, content, source_event_id),
        occurred_at=work.occurred_at,
    )


def _scrobbles(plan: Plan) -> list[store.NewScrobble]:
    rows = []
    for work, event in plan.work:
        user_id, event_id = as_uuid(event.user_id), uuid.UUID(event.event_id)
        rows.append(new_scrobble(work, user_id, plan.content_of(event), event_id))
    return rows


async def queue_scrobbles(
    conn: Conn, scrobbles: Sequence[store.NewScrobble], topics: Topics
) -> tuple[list[OutboxMessage], dict[str, int]]:
    """Insert work rows; an outbox message for each row that was really new."""
    inserted = await store.insert_scrobbles(conn, scrobbles)
    messages: list[OutboxMessage] = []
    queued: dict[str, int] = {}
    for row in scrobbles:
        if row.id in inserted:
            messages.append(
                OutboxMessage(
                    topic=topics.for_service(row.service),
                    key=str(row.connection_id).encode(),
                    value=row.request_json.encode(),
                    headers={"kind": row.kind},
                    message_id=str(row.id),
                )
            )
            queued[row.service] = queued.get(row.service, 0) + 1
    return messages, queued


async def process_batch(
    conn: Conn,
    records: Sequence[Record],
    lookup: ConnectionLookup,
    topics: Topics,
    silence: timedelta = DEFAULT_SILENCE,
) -> BatchResult:
    """Write everything one batch means, in one transaction; returns the outbox ids to
    publish and what happened to each event."""
    decoded = [decode(r) for r in records]
    accepted = [d for d in decoded if isinstance(d, Accepted)]
    rejected = [d for d in decoded if isinstance(d, Rejection)]
    result = BatchResult()
    async with conn.transaction():
        new_ids = await store.record_new_events(conn, [a.event for a in accepted])
        fresh = unique_by_event_id(a for a in accepted if a.event.event_id in new_ids)
        result.outcomes[DUPLICATE] = len(accepted) - len(fresh)
        users = sorted({as_uuid(a.event.user_id) for a in fresh})
        connections = await lookup(conn, users)
        keys = sorted({play_key(a.event) for a in fresh if is_play_event(a.event)})
        latest = await store.load_latest_plays(conn, keys)
        plan = plan_batch(fresh, connections, latest, silence=silence)
        plan.rejections[:0] = rejected
        plan.count("dead_lettered", len(rejected))
        await store.save_plays(conn, list(plan.plays.values()))
        work_messages, result.queued = await queue_scrobbles(conn, _scrobbles(plan), topics)
        new_rejections = await store.record_rejections(conn, plan.rejections)
        messages = [_dead_letter(r, topics.dead_letters) for r in new_rejections]
        result.outbox = await insert_outbox_messages(conn, messages + work_messages)
    result.outcomes.update({k: v for k, v in plan.outcomes.items() if k != DUPLICATE})
    return result
