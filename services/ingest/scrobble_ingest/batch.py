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

from scrobble_ingest import store
from scrobble_ingest.plan import (
    DUPLICATE,
    Accepted,
    Plan,
    Record,
    Rejection,
    dead_letter_headers,
    decode,
    is_play_event,
    plan_batch,
    play_key,
    unique_by_event_id,
)
from scrobble_shared.db import Conn
from scrobble_shared.db.scrobbles import queue_scrobbles
from scrobble_shared.ids import as_uuid
from scrobble_shared.outbox import OutboxMessage, insert_outbox_messages
from scrobble_shared.plays import DEFAULT_SILENCE
from scrobble_shared.work import ConnectionRules
from scrobble_shared.work_message import NewScrobble, WorkTopics, new_scrobble

ConnectionLookup = Callable[
    [Conn, Sequence[uuid.UUID]], Awaitable[dict[uuid.UUID, list[ConnectionRules]]]
]


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


def _scrobbles(plan: Plan) -> list[NewScrobble]:
    rows = []
    for work, event in plan.work:
        user_id, event_id = as_uuid(event.user_id), as_uuid(event.event_id)
        rows.append(new_scrobble(work, user_id, plan.content_of(event), event_id))
    return rows


async def process_batch(
    conn: Conn,
    records: Sequence[Record],
    lookup: ConnectionLookup,
    topics: WorkTopics,
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
        fresh = unique_by_event_id(a for a in accepted if as_uuid(a.event.event_id) in new_ids)
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
