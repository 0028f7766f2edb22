"""Opaque cursors of the list routes: a page ends at a row, the next page starts after it.

A cursor is the sort key of the last row handed out (a timestamp and the row's id) as
url-safe base64 of a small JSON array. Clients pass it back unchanged; anything that does
not decode is a :class:`BadCursor`, which the handlers answer with a 422 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000


class BadCursor(ValueError):
    """The cursor was not made by this service (or was damaged on the way)."""


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row's sort timestamp and id."""

    at: datetime
    id: uuid.UUID


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position.at.isoformat(), str(position.id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        position = Position(datetime.fromisoformat(at), uuid.UUID(row_id))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise BadCursor("not a cursor this service handed out") from None
    if position.at.tzinfo is None:
        raise BadCursor("not a cursor this service handed out")
    return position
