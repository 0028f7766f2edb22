"""Turning a batch of playback records into database writes and messages. Pure: no I/O.

The consumer (``consumer.py``) feeds this module what it read from Kafka and Postgres and
writes back what it returns; every decision of CONTRACTS sections 1 and 2 is made here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from scrobble_shared.events import Action, InvalidEvent, PlaybackEvent, parse_usable_event
from scrobble_shared.ids import as_uuid
from scrobble_shared.plays import DEFAULT_SILENCE, Play, Step, advance
from scrobble_shared.work import (
    ConnectionRules,
    Work,
    mark_watched_work,
    play_work,
    rating_work,
    takes,
)

# (user, content, session): an item in a player session; its plays are numbered.
PlayKey = tuple[uuid.UUID, uuid.UUID, str]
# (user, content, session, play number): one row of play_sessions.
PlayRowKey = tuple[uuid.UUID, uuid.UUID, str, int]

# Outcomes counted per event (scrobble_ingest_events_total{outcome}).
PROCESSED: Final = "processed"
NOTHING_TO_DO: Final = "nothing_to_do"
DUPLICATE: Final = "duplicate"
DEAD_LETTERED: Final = "dead_lettered"


@dataclass(frozen=True)
class Record:
    """One Kafka record of the playback topic, as read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    # When it was published (the producer's CreateTime, or the broker's LogAppendTime), in
    # milliseconds since the epoch; None when not known.
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class Rejection:
    """Why a record cannot be used; it goes to the dead-letter topic unchanged."""

    record: Record
    error_class: str
    error_message: str


@dataclass(frozen=True)
class Accepted:
    record: Record
    event: PlaybackEvent


def decode(record: Record) -> Accepted | Rejection:
    """Parse and validate one record; anything unusable becomes a :class:`Rejection`."""
    try:
        event = parse_usable_event(record.value or b"")
    except InvalidEvent as exc:
        return Rejection(record, f"InvalidEvent.{exc.reason}", str(exc))
    return Accepted(record, not_after_publication(event, record.timestamp_ms))


def not_after_publication(event: PlaybackEvent, published_ms: int | None) -> PlaybackEvent:
    """The event, dated no later than it was published. A media server whose clock runs
    ahead dates its plays in the future; nothing happened after it was published, and the
    trackers refuse plays from the future (Last.fm ignores scrobbles more than 5 minutes
    ahead), so such an event is dated when it was published."""
    if published_ms is None:
        return event
    published = datetime.fromtimestamp(published_ms / 1000, UTC)
    if event.occurred_at <= published:
        return event
    return event.model_copy(update={"occurred_at": published})


def play_key(event: PlaybackEvent) -> PlayKey:
    return (as_uuid(event.user_id), as_uuid(event.content.id), event.session_id or "")


def is_play_event(event: PlaybackEvent) -> bool:
    return event.action not in (Action.RATE, Action.MARK_WATCHED)


@dataclass(frozen=True)
class PlayWrite:
    """A play to upsert, with the item it is a play of (stored for the silence sweeper)."""

    play: Play
    content: dict[str, Any]


@dataclass
class Plan:
    """Everything one batch writes: plays to upsert, work to queue, records to reject."""

    plays: dict[PlayRowKey, PlayWrite] = field(default_factory=dict)
    work: list[tuple[Work, PlaybackEvent]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    # Each event's content as JSON values, by event id: dumped once per event.
    contents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def content_of(self, event: PlaybackEvent) -> dict[str, Any]:
        content = self.contents.get(event.event_id)
        if content is None:
            content = event.content.model_dump(mode="json", exclude_none=True)
            self.contents[event.event_id] = content
        return content

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n


def _work_for(rules: ConnectionRules, event: PlaybackEvent, step: Step | None) -> list[Work]:
    if event.action is Action.RATE:
        return rating_work(rules, event)
    if event.action is Action.MARK_WATCHED:
        return mark_watched_work(rules, event)
    assert step is not None  # every play event has advanced its play
    return play_work(rules, event, step)


def plan_batch(
    accepted: Sequence[Accepted],
    connections: Mapping[uuid.UUID, Sequence[ConnectionRules]],
    latest_plays: Mapping[PlayKey, Play],
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    silence: timedelta = DEFAULT_SILENCE,
) -> Plan:
    """Decide what each new event of a batch means, in the order the events arrived.

    ``accepted`` holds only events never seen before; ``latest_plays`` the newest play of
    each item the batch touches. An unknown user, or a user none of whose connections can
    take the content type, is a rejection (dead letter); a valid event that asks nothing
    of any enabled connection is counted and dropped.
    """
    plan = Plan()
    current: dict[PlayKey, Play] = dict(latest_plays)
    for item in accepted:
        event = item.event
        user_connections = connections.get(as_uuid(event.user_id), ())
        if not user_connections:
            plan.rejections.append(
                Rejection(item.record, "UnknownUser", f"user {event.user_id} has no connections")
            )
            continue
        if not any(takes(c, event.content) for c in user_connections):
            services = ", ".join(sorted(c.service for c in user_connections))
            plan.rejections.append(
                Rejection(
                    item.record,
                    "NoConnectionTakesContent",
                    f"no connection of user {event.user_id} takes {event.content.type} "
                    f"(connected: {services})",
                )
            )
            continue
        step = None
        if is_play_event(event):
            key = play_key(event)
            step = advance(current.get(key), event, new_id, silence)
            content = plan.content_of(event)
            for play in (step.superseded, step.play):
                if play is not None:
                    plan.plays[(*key, play.play_number)] = PlayWrite(play, content)
            current[key] = step.play
        found = [w for rules in user_connections for w in _work_for(rules, event, step)]
        plan.work.extend((w, event) for w in found)
        plan.count(PROCESSED if found else NOTHING_TO_DO)
    plan.count(DEAD_LETTERED, len(plan.rejections))
    return plan


def dead_letter_headers(rejection: Rejection) -> dict[str, str]:
    """The headers CONTRACTS section 1 puts on every dead letter."""
    record = rejection.record
    return {
        "error.class": rejection.error_class,
        "error.message": rejection.error_message[:1000],
        "source.topic": record.topic,
        "source.partition": str(record.partition),
        "source.offset": str(record.offset),
    }


def unique_by_event_id(items: Iterable[Accepted]) -> list[Accepted]:
    """The first of each event id in a batch; later copies are duplicates, whichever case
    their id is spelled in."""
    seen: set[uuid.UUID] = set()
    kept: list[Accepted] = []
    for item in items:
        event_id = as_uuid(item.event.event_id)
        if event_id not in seen:
            seen.add(event_id)
            kept.append(item)
    return kept
