"""Sources, times and a translate-to-JSON helper for the intake's unit tests.

The payload builders in the test modules are written from the field lists of
``shared/docs/INTAKE.md``; none is copied from another project.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scrobble_intake.translate import Ignored, Publish, Skip, translate
from scrobble_intake.translate.common import INTAKE_NAMESPACE
from scrobble_shared.sources import Source, SourceFilters, SourceKind, server_user_key

SOURCE_ID = uuid.UUID("8c0b8f4e-3a52-4c61-9a0e-5f3c2d1b0a99")
OWNER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
ALICE = uuid.UUID("a11ce000-0000-4000-8000-000000000001")
BOB = uuid.UUID("b0b00000-0000-4000-8000-000000000002")
RECEIVED = datetime(2026, 11, 20, 21, 5, 0, tzinfo=UTC)


def source(
    kind: SourceKind,
    *,
    mappings: Mapping[str, uuid.UUID] | None = None,
    owner: uuid.UUID | None = OWNER,
    **filters: Any,
) -> Source:
    return Source(
        id=SOURCE_ID,
        kind=kind,
        name="Home",
        owner_id=owner,
        filters=SourceFilters(**filters),
        mappings={server_user_key(k): v for k, v in (mappings or {}).items()},
    )


def item_id(server_item: str) -> str:
    return str(uuid.uuid5(INTAKE_NAMESPACE, f"{SOURCE_ID}|item|{server_item}"))


def session_id(server_session: str) -> str:
    return str(uuid.uuid5(INTAKE_NAMESPACE, f"{SOURCE_ID}|session|{server_session}"))


def published(
    payload: Mapping[str, Any], src: Source, received: datetime = RECEIVED
) -> dict[str, Any]:
    """The one event the payload becomes, as the JSON the intake publishes."""
    decision = translate(payload, src, received)
    assert isinstance(decision, Publish), decision
    return decision.event.to_json_dict()


def outcome(
    payload: Mapping[str, Any], src: Source, received: datetime = RECEIVED
) -> Publish | Skip | Ignored:
    return translate(payload, src, received)
