"""Scrobble work as it travels: the message on ``scrobble.<service>`` (CONTRACTS section 3),
which is also the ``scrobbles.request`` column, and the row that queues it. Pure: no I/O.

One codec for every side: the writers (ingest's play rules, the gateway's ``POST /queue``,
the importer's two-way sync, ingest's sweeper) build the message with :func:`work_message`
and the row with :func:`new_scrobble`; the reader (the dispatcher) turns it back into a
:class:`ScrobbleWork` with :meth:`ScrobbleWork.from_message`. Writing it (the row and its
outbox message in the caller's transaction) is ``scrobble_shared.db.scrobbles``.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from scrobble_shared.events import Content
from scrobble_shared.ids import as_uuid
from scrobble_shared.service_names import ServiceName
from scrobble_shared.work import Work, WorkKind


@dataclass(frozen=True)
class WorkTopics:
    """Where scrobble work and dead letters go: ``<service_prefix><service>``."""

    dead_letters: str
    service_prefix: str

    def for_service(self, service: str) -> str:
        return f"{self.service_prefix}{service}"


def work_message(
    scrobble_id: uuid.UUID,
    work: Work,
    user_id: uuid.UUID,
    content: Mapping[str, Any],
    source_event_id: uuid.UUID | None,
) -> dict[str, Any]:
    """The message of one piece of work (and its ``scrobbles.request`` column)."""
    return {
        "scrobble_id": str(scrobble_id),
        "connection_id": str(work.connection_id),
        "user_id": str(user_id),
        "service": work.service,
        "kind": work.kind.value,
        "dedupe_key": work.dedupe_key,
        "occurred_at": work.occurred_at.isoformat(),
        "progress_percent": work.progress_percent,
        "rating": work.rating,
        "play_id": None if work.play_id is None else str(work.play_id),
        "source_event_id": None if source_event_id is None else str(source_event_id),
        "content": dict(content),
    }


def dumps(value: Mapping[str, Any]) -> bytes:
    """Compact JSON as UTF-8, the form messages and JSON columns are written in.

    orjson writes it (about a tenth of ingest's CPU went to the standard library's encoder
    here); an integer beyond 64 bits, which orjson does not write and a valid event may
    carry (a show's year has no upper bound), goes through the standard library instead.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class ScrobbleWork:
    """One message of ``scrobble.<service>``, read back (:func:`work_message` wrote it)."""

    scrobble_id: uuid.UUID
    connection_id: uuid.UUID
    user_id: uuid.UUID
    service: ServiceName
    kind: WorkKind
    dedupe_key: str
    occurred_at: datetime
    content: Content
    progress_percent: float | None = None
    rating: float | None = None
    play_id: uuid.UUID | None = None
    source_event_id: uuid.UUID | None = None

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> ScrobbleWork:
        def optional_uuid(name: str) -> uuid.UUID | None:
            value = message.get(name)
            return None if value is None else uuid.UUID(value)

        return cls(
            scrobble_id=uuid.UUID(message["scrobble_id"]),
            connection_id=uuid.UUID(message["connection_id"]),
            user_id=uuid.UUID(message["user_id"]),
            service=message["service"],
            kind=WorkKind(message["kind"]),
            dedupe_key=message["dedupe_key"],
            occurred_at=datetime.fromisoformat(message["occurred_at"]),
            content=Content.model_validate(message["content"]),
            progress_percent=message.get("progress_percent"),
            rating=message.get("rating"),
            play_id=optional_uuid("play_id"),
            source_event_id=optional_uuid("source_event_id"),
        )


@dataclass(frozen=True)
class NewScrobble:
    """A ``scrobbles`` row to insert, with the message it carries (``request``)."""

    id: uuid.UUID
    connection_id: uuid.UUID
    user_id: uuid.UUID
    service: str
    dedupe_key: str
    kind: str
    play_id: uuid.UUID | None
    source_event_id: uuid.UUID | None
    content_type: str
    content_id: uuid.UUID
    request: dict[str, Any]
    occurred_at: datetime

    @functools.cached_property
    def request_bytes(self) -> bytes:
        """The request as JSON, encoded once for the row and its message."""
        return dumps(self.request)

    @property
    def request_json(self) -> str:
        return self.request_bytes.decode("utf-8")


def new_scrobble(
    work: Work, user_id: uuid.UUID, content: Mapping[str, Any], source_event_id: uuid.UUID | None
) -> NewScrobble:
    """The row (with a new id) of one piece of work for ``content``."""
    scrobble_id = uuid.uuid4()
    return NewScrobble(
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
