"""Work as a dispatcher takes it from its topic (``ScrobbleWork``), for the client tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import uuid4

from scrobble_shared.events import Content
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork


def scrobble_work(
    service: str,
    kind: WorkKind,
    content: Content | Mapping[str, Any],
    occurred_at: datetime,
    **fields: Any,
) -> ScrobbleWork:
    """``content`` as given, or validated from a mapping (with an ``id`` of its own when it
    has none). The scrobble, connection and user ids are fresh and the dedupe key is
    "test" unless ``fields`` says otherwise; ``fields`` set any other field too."""
    item = (
        content
        if isinstance(content, Content)
        else Content.model_validate({"id": str(uuid4()), **content})
    )
    values: dict[str, Any] = {
        "scrobble_id": uuid4(),
        "connection_id": uuid4(),
        "user_id": uuid4(),
        "dedupe_key": "test",
        **fields,
    }
    return ScrobbleWork(service=service, kind=kind, occurred_at=occurred_at, content=item, **values)
