"""UUIDs from the text that events carry, each parsed once: the same users and items come
back event after event, and ``uuid.UUID()`` parses in pure Python (a few microseconds, a
hot spot of ingest's batches). UUIDs are immutable, so sharing one is safe."""

from __future__ import annotations

import functools
import uuid


@functools.lru_cache(maxsize=65_536)
def as_uuid(text: str) -> uuid.UUID:
    """The UUID that ``text`` spells (either case); ValueError when it spells none."""
    return uuid.UUID(text)
