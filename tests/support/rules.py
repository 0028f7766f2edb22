"""Connection rules for tests: a connection of a tracker, with its tracker's play rules."""

from __future__ import annotations

import uuid
from typing import Any

from scrobble_shared.trackers.registry import tracker
from scrobble_shared.work import ConnectionRules


def rules_of(service: str, connection_id: uuid.UUID | None = None, **kw: Any) -> ConnectionRules:
    return ConnectionRules(
        id=connection_id or uuid.uuid4(), service=service, play=tracker(service).play, **kw
    )
