"""``POST /queue``: a scrobble queued by hand goes the way a playback event does.

The request becomes a playback event (:func:`manual_event`) and the work rules of
``scrobble_shared.work`` decide what it means for the connection, exactly as for an event
from a media server. The work is stored with ingest's own statements (the idempotent
``scrobbles`` insert and an outbox row per new row, in one transaction) and published by
the shared outbox relay to ``scrobble.<service>``, keyed by connection id.

Idempotency: the event id is derived from the connection and the request's content, so the
same request twice is the same event: one row, one message. A second real play of the same
item is a request that differs (another ``watched_at``).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from scrobble_gateway.schemas import ScrobbleRequest
from scrobble_shared.db import Conn
from scrobble_shared.db.scrobbles import queue_scrobbles
from scrobble_shared.events import Action, PlaybackEvent
from scrobble_shared.outbox import insert_outbox
from scrobble_shared.plays import advance, is_play_action
from scrobble_shared.work import (
    ConnectionRules,
    Work,
    mark_watched_work,
    play_work,
    rating_work,
    takes,
)
from scrobble_shared.work_message import WorkTopics, new_scrobble

# Event ids of hand-queued scrobbles live in their own namespace.
MANUAL_NAMESPACE: Final = uuid.UUID("b0d3c2a4-64a5-4c1e-9a8e-5f7e1c2d9a10")
# The playback event needs a title; trackers that match by id ignore it.
UNTITLED: Final = "(untitled)"


class QueueRefused(Exception):
    """The request cannot become work for this connection; ``field`` says what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidScrobble(Exception):
    """The request does not make a valid playback event; ``errors`` name the fields."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def manual_event_id(connection_id: uuid.UUID, request: ScrobbleRequest) -> uuid.UUID:
    canonical = json.dumps(
        {"connection_id": str(connection_id), "request": request.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return uuid.uuid5(MANUAL_NAMESPACE, canonical)


def _field(loc: tuple[int | str, ...]) -> str:
    path = [str(p) for p in loc]
    return "request." + ".".join(path)


def manual_event(
    user_id: uuid.UUID, connection_id: uuid.UUID, request: ScrobbleRequest, now: datetime
) -> PlaybackEvent:
    """The playback event a media server would have sent for this request."""
    event_id = manual_event_id(connection_id, request)
    content: dict[str, Any] = {"title": UNTITLED, **(request.content or {})}
    content.update(type=request.content_type, id=request.content_id)
    if request.external_ids is not None:
        content["external_ids"] = request.external_ids.model_dump(exclude_none=True)
    occurred_at = request.watched_at or now
    body: dict[str, Any] = {
        "event_id": str(event_id),
        "user_id": str(user_id),
        "session_id": f"manual:{event_id}",
        "action": request.action,
        "occurred_at": occurred_at,
        "content": content,
    }
    for name in ("progress_percent", "rating", "watched_at"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if is_play_action(Action(request.action)):
        # Where the play stood: what the listen rule measures for music.
        duration, progress = content.get("duration_ms"), request.progress_percent
        position = 0
        if isinstance(duration, int) and duration > 0 and progress is not None:
            position = round(duration * progress / 100)
        body["position_ms"] = position
    try:
        return PlaybackEvent.model_validate(body)
    except ValidationError as exc:
        raise InvalidScrobble(
            [{"field": _field(e["loc"]), "message": str(e["msg"])} for e in exc.errors()]
        ) from None


def manual_work(rules: ConnectionRules, event: PlaybackEvent) -> list[Work]:
    """The work rules of CONTRACTS section 2 for one event and one connection, as ingest
    applies them; the play is a fresh one of its own (its id derived from the event's)."""
    _refuse_unusable(rules, event)
    if event.action is Action.RATE:
        found = rating_work(rules, event)
    elif event.action is Action.MARK_WATCHED:
        found = mark_watched_work(rules, event)
    else:
        play_id = uuid.uuid5(MANUAL_NAMESPACE, f"play:{event.event_id}")
        found = play_work(rules, event, advance(None, event, lambda: play_id))
    if not found:
        raise QueueRefused("request.action", _nothing_to_do(rules, event))
    # The play exists only in this request, not in play_sessions: no row to point at.
    return [dataclasses.replace(w, play_id=None) for w in found]


def _refuse_unusable(rules: ConnectionRules, event: PlaybackEvent) -> None:
    if not rules.enabled:
        raise QueueRefused("connection_id", "the connection is disabled")
    if not takes(rules, event.content):
        raise QueueRefused(
            "request.content_type", f"{rules.service} does not take {event.content.type}"
        )
    if event.action is Action.RATE and event.rating is None:
        raise QueueRefused("request.rating", "required for action rate")
    if rules.play.music:
        content = event.content
        if content.title == UNTITLED:
            raise QueueRefused("request.content.title", f"{rules.service} needs the track title")
        if not content.artists:
            raise QueueRefused("request.content.artists", f"{rules.service} needs the artists")
    elif (
        event.action in (Action.PAUSE, Action.PROGRESS, Action.STOP)
        and event.progress_percent_effective() is None
    ):
        raise QueueRefused("request.progress_percent", "needed to judge how much was watched")


def _nothing_to_do(rules: ConnectionRules, event: PlaybackEvent) -> str:
    service, action = rules.service, event.action
    if action is Action.RATE:
        if not rules.sync_ratings:
            return "the connection does not sync ratings (sync_ratings is off)"
        if not rules.play.ratings:
            return f"{service} keeps no ratings"
        return f"{service} takes no rating like this one (music: 8 or more, with an MBID)"
    if action is Action.MARK_WATCHED:
        if not rules.sync_watch_status:
            return "the connection does not sync watch status (sync_watch_status is off)"
        return f"{service} keeps no watch status"
    if rules.play.music and action is Action.STOP:
        return (
            "the listen does not count: give content.duration_ms and a progress_percent "
            "of half the track (or 4 minutes)"
        )
    return f"{service} has no call for {action.value} here"


@dataclass(frozen=True)
class Queued:
    """The rows this request stands for, whether it queued them now, and what to publish."""

    scrobble_ids: list[uuid.UUID]
    created: bool
    outbox_ids: list[int]


async def store_manual_work(
    conn: Conn, topics: WorkTopics, user_id: uuid.UUID, event: PlaybackEvent, work: list[Work]
) -> Queued:
    """In one transaction: the work rows (idempotent) and an outbox row per new one. The
    same request sent twice at once is serialised on its event id."""
    event_id = uuid.UUID(event.event_id)
    content = event.content.model_dump(mode="json", exclude_none=True)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", str(event_id))
        earlier = await conn.fetch(
            "SELECT id FROM scrobbles WHERE connection_id = $1 AND source_event_id = $2 "
            "ORDER BY created_at, id",
            work[0].connection_id,
            event_id,
        )
        if earlier:
            return Queued([r["id"] for r in earlier], created=False, outbox_ids=[])
        rows = [new_scrobble(w, user_id, content, event_id) for w in work]
        messages, _ = await queue_scrobbles(conn, rows, topics)
        outbox_ids = await insert_outbox(conn, messages)
        taken = await conn.fetch(
            "SELECT id FROM scrobbles WHERE connection_id = $1 AND dedupe_key = ANY($2::text[]) "
            "ORDER BY created_at, id",
            work[0].connection_id,
            [w.dedupe_key for w in work],
        )
    return Queued([r["id"] for r in taken], created=bool(messages), outbox_ids=outbox_ids)


def utc_now() -> datetime:
    return datetime.now(UTC)
