"""Encryption of stored tokens at rest (Fernet, with key rotation through MultiFernet).

``TOKEN_ENCRYPTION_KEY`` holds one or more Fernet keys separated by commas. The first key
encrypts; every key is tried to decrypt, so an operator rotates by putting the new key
first and keeping the old one second until ``scrobble keys rotate`` has rewritten the
stored tokens (``scrobble_shared.db.connections.rotate_stored_tokens``). A Fernet token
carries no key id: which key opens a stored value is found by trying them in order
(:meth:`TokenCipher.key_position`), and rotation rewrites only what the first key does not
open (:meth:`TokenCipher.reencrypt`). Generate a key with
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.
"""

from __future__ import annotations

import base64
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class TokenKeyError(ValueError):
    """``TOKEN_ENCRYPTION_KEY`` is empty or one of its keys is not a Fernet key."""


class TokenDecryptError(Exception):
    """A stored token does not decrypt with any configured key (wrong key, or damaged)."""


def parse_keys(raw: str) -> list[Fernet]:
    """Split the comma-separated key list; the message names the bad entry, never its value."""
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if not entries:
        raise TokenKeyError("TOKEN_ENCRYPTION_KEY holds no key")
    keys: list[Fernet] = []
    for position, entry in enumerate(entries, start=1):
        try:
            keys.append(Fernet(entry.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise TokenKeyError(
                f"TOKEN_ENCRYPTION_KEY entry {position} is not a Fernet key "
                "(32 bytes, url-safe base64, 44 characters)"
            ) from None
    return keys


def derive_keys(raw: str, purpose: bytes) -> list[bytes]:
    """One 32-byte key per ``TOKEN_ENCRYPTION_KEY`` entry, in the same order, for another
    use than Fernet (HKDF-SHA256 with ``purpose`` as its info): every replica derives the
    same keys, a rotation keeps the old one usable while it is listed, and what is derived
    tells nothing about the Fernet key or the keys of another purpose."""
    derived: list[bytes] = []
    for position, entry in enumerate(e.strip() for e in raw.split(",") if e.strip()):
        try:
            material = base64.urlsafe_b64decode(entry.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise TokenKeyError(f"TOKEN_ENCRYPTION_KEY entry {position + 1} is not a key") from None
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
        derived.append(hkdf.derive(material))
    if not derived:
        raise TokenKeyError("TOKEN_ENCRYPTION_KEY holds no key")
    return derived


_NO_KEY_OPENS: Final = (
    "stored token does not decrypt with any TOKEN_ENCRYPTION_KEY entry: "
    "the key that encrypted it is not configured, or the value is damaged"
)


class TokenCipher:
    """Encrypts tokens with the first key and decrypts with any of them."""

    def __init__(self, raw_keys: str) -> None:
        self._keys = parse_keys(raw_keys)
        self._fernet = MultiFernet(self._keys)

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode("utf-8"))

    def decrypt(self, stored: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(stored)).decode("utf-8")
        except InvalidToken:
            raise TokenDecryptError(_NO_KEY_OPENS) from None

    def key_position(self, stored: bytes) -> int | None:
        """Which configured key opens ``stored``: 0 for the first (the one that encrypts),
        1 for the next...; None when none does (an unconfigured key, or damage)."""
        for position, key in enumerate(self._keys):
            try:
                key.decrypt(bytes(stored))
            except InvalidToken:
                continue
            return position
        return None

    def reencrypt(self, stored: bytes) -> bytes | None:
        """``stored`` re-encrypted under the first key; None when the first key opens it
        already (nothing to rewrite). :class:`TokenDecryptError` when no key opens it."""
        value = bytes(stored)
        try:
            self._keys[0].decrypt(value)
        except InvalidToken:
            pass
        else:
            return None
        return self.rotate(value)

    def rotate(self, stored: bytes) -> bytes:
        """Re-encrypt a stored token under the first (newest) key."""
        try:
            return self._fernet.rotate(bytes(stored))
        except InvalidToken:
            raise TokenDecryptError(_NO_KEY_OPENS) from None
