"""Encryption of stored tokens at rest (Fernet, with key rotation through MultiFernet).

``TOKEN_ENCRYPTION_KEY`` holds one or more Fernet keys separated by commas. The first key
encrypts; every key is tried to decrypt, so an operator rotates by putting the new key
first and keeping the old one second until :meth:`TokenCipher.rotate` has rewritten the
stored tokens. Generate a key with
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


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


class TokenCipher:
    """Encrypts tokens with the first key and decrypts with any of them."""

    def __init__(self, raw_keys: str) -> None:
        self._fernet = MultiFernet(parse_keys(raw_keys))

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode("utf-8"))

    def decrypt(self, stored: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(stored)).decode("utf-8")
        except InvalidToken:
            raise TokenDecryptError(
                "stored token does not decrypt with any TOKEN_ENCRYPTION_KEY entry: "
                "the key that encrypted it is not configured, or the value is damaged"
            ) from None

    def rotate(self, stored: bytes) -> bytes:
        """Re-encrypt a stored token under the first (newest) key."""
        try:
            return self._fernet.rotate(bytes(stored))
        except InvalidToken:
            raise TokenDecryptError(
                "stored token does not decrypt with any TOKEN_ENCRYPTION_KEY entry"
            ) from None
