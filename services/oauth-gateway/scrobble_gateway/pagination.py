"""Opaque cursors of the list routes: a page ends at a row, the next page starts after it.

A cursor is the sort key of the last row handed out (a timestamp and the row's id) as
url-safe base64 of a small JSON array, then ``.`` and an HMAC-SHA256 tag of it (128 bits).
Clients pass it back unchanged; a cursor we did not sign (forged, changed, or from before
cursors were signed) is a :class:`BadCursor`, which the handlers answer with a 422 naming
``cursor``, and its content is never parsed: only what we wrote is read.

The signing keys are derived from ``TOKEN_ENCRYPTION_KEY`` (HKDF, ``scrobble_shared.crypto.
derive_keys``): the gateway cannot start without that setting, every replica has the same
one and it survives restarts, so a cursor is good on any replica, before and after a
restart, with no new secret to generate or distribute. ``GATEWAY_JWT_SECRET`` was the other
candidate, but an install checking tokens with ``GATEWAY_JWKS_URL`` alone has none. The
first key signs and every listed key opens, so cursors handed out before a key rotation
keep working until the old key is removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from scrobble_shared.crypto import derive_keys
from scrobble_shared.settings import Settings

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000
# Ours are about 125 characters; anything much longer is not one, and is not looked at.
MAX_CURSOR_LENGTH: Final = 256
CURSOR_KEY_PURPOSE: Final = b"revenge-scrobble gateway cursors v1"
_TAG_BYTES: Final = 16


class BadCursor(ValueError):
    """The cursor was not made by this service (or was damaged on the way)."""


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row's sort timestamp and id."""

    at: datetime
    id: uuid.UUID


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorSigner:
    """Makes cursors signed with the first key and opens those of any key."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a cursor signer needs at least one key")
        self._keys = list(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> CursorSigner:
        settings.require("token_encryption_key")
        assert settings.token_encryption_key is not None
        raw = settings.token_encryption_key.get_secret_value()
        return cls(derive_keys(raw, CURSOR_KEY_PURPOSE))

    def _tag(self, key: bytes, body: str) -> str:
        # Compared as text: base64 ignores the spare bits of its last character, so two
        # spellings would open to the same bytes.
        return _b64(hmac.digest(key, body.encode("ascii"), hashlib.sha256)[:_TAG_BYTES])

    def encode(self, position: Position) -> str:
        raw = json.dumps([position.at.isoformat(), str(position.id)], separators=(",", ":"))
        body = _b64(raw.encode())
        return f"{body}.{self._tag(self._keys[0], body)}"

    def decode(self, cursor: str) -> Position:
        """The position of a cursor we signed, or :class:`BadCursor`."""
        if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
            raise BadCursor("not a cursor this service handed out")
        body, _, tag = cursor.partition(".")
        if not any(hmac.compare_digest(tag, self._tag(key, body)) for key in self._keys):
            raise BadCursor("not a cursor this service handed out")
        return _position(body)

    def decode_or_start(self, cursor: str | None) -> Position | None:
        """The position of a cursor we signed; None (the first page) for no cursor or one
        we did not sign: a page's links are followed by people, who get the start again."""
        if not cursor:
            return None
        try:
            return self.decode(cursor)
        except BadCursor:
            return None


def _position(body: str) -> Position:
    # Signed by us, so written by encode(); read with care all the same.
    try:
        at, row_id = json.loads(_unb64(body))
        position = Position(datetime.fromisoformat(at), uuid.UUID(row_id))
    except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError):
        raise BadCursor("not a cursor this service handed out") from None
    if position.at.tzinfo is None:
        raise BadCursor("not a cursor this service handed out")
    return position
