"""``POST /api/v1/intake/events/{secret}``: PlaybackEvent v1 over HTTP, for media servers
that speak HTTP but not Kafka (Revenge itself, any script). Pure.

The body is one event object, a JSON array of them, or NDJSON (one per line; blank lines
are skipped), at most :data:`MAX_EVENTS` events. Each event is judged on its own by the
validator ingest applies to Kafka values (``scrobble_shared.events.parse_usable_event``,
fed the event's own bytes: a line of NDJSON as it came, an array element as compact JSON),
so what the intake lets through is exactly what ingest takes. Its ``user_id`` is the
server's user, mapped by the source like any webhook's (``Source.user_for``); the event
is published with our user id in its place and is otherwise unchanged. Valid events are
published; every rejected or skipped one is listed by its index with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

import orjson

from scrobble_intake.bodies import NDJSON_TYPES, BodyError, parse_json
from scrobble_shared.events import InvalidEvent, parse_usable_event
from scrobble_shared.json_limits import UnreadableJson, load_json
from scrobble_shared.sources import ServerUser, Source

MAX_EVENTS: Final = 1000


@dataclass(frozen=True)
class Accepted:
    index: int
    user_id: UUID
    action: str
    value: bytes


@dataclass(frozen=True)
class Refused:
    """An event not published: ``error`` is ``unmapped`` (skipped, not an error of the
    sender's) or the validator's reason (``schema``, ``semantics``, ``not_json``...)."""

    index: int
    error: str
    problems: list[str]


@dataclass
class Judged:
    accepted: list[Accepted] = field(default_factory=list)
    skipped: list[Refused] = field(default_factory=list)
    rejected: list[Refused] = field(default_factory=list)


def split(raw: bytes, content_type: str) -> list[bytes]:
    """The body's events, each as the bytes the validator judges; a 400 or 413 when the
    body as a whole is unusable (not JSON, not objects, too many)."""
    if content_type in NDJSON_TYPES:
        values = [line for line in raw.split(b"\n") if line.strip()]
    else:
        document = parse_json(raw)
        if isinstance(document, dict):
            values = [raw]
        elif isinstance(document, list):
            values = [_compact(element) for element in document[: MAX_EVENTS + 1]]
            if len(document) > MAX_EVENTS:
                values.append(b"")
        else:
            raise BodyError(400, "body must be an event object, an array of events or NDJSON")
    if not values:
        raise BodyError(400, "body holds no events")
    if len(values) > MAX_EVENTS:
        raise BodyError(413, f"at most {MAX_EVENTS} events per request")
    return values


def _compact(value: Any) -> bytes:
    return orjson.dumps(value)


def judge(values: Sequence[bytes], source: Source) -> Judged:
    judged = Judged()
    for index, value in enumerate(values):
        try:
            event = parse_usable_event(value)
        except InvalidEvent as exc:
            judged.rejected.append(Refused(index, exc.reason, exc.problems))
            continue
        try:
            # What the validator let through, read again by the reader that writes it out:
            # it refuses a lone surrogate in a field the event does not use.
            document = load_json(value)
        except UnreadableJson as exc:
            judged.rejected.append(Refused(index, "not_json", [str(exc)]))
            continue
        user = source.user_for(ServerUser(id=event.user_id))
        if user is None:
            judged.skipped.append(Refused(index, "unmapped", [f"user {event.user_id}"]))
            continue
        document["user_id"] = str(user)
        judged.accepted.append(Accepted(index, user, event.action.value, _compact(document)))
    return judged


def answer_body(judged: Judged) -> dict[str, Any]:
    """What the answer says of each event (the 207-style body)."""

    def listed(refused: list[Refused]) -> list[dict[str, Any]]:
        return [{"index": r.index, "error": r.error, "problems": r.problems} for r in refused]

    return {
        "accepted": len(judged.accepted),
        "skipped": listed(judged.skipped),
        "rejected": listed(judged.rejected),
    }
