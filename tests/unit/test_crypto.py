"""Token encryption at rest: round trip, rotation, and clear errors for wrong keys."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from scrobble_shared.crypto import TokenCipher, TokenDecryptError, TokenKeyError


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_and_ciphertext_hides_the_token() -> None:
    cipher = TokenCipher(new_key())
    stored = cipher.encrypt("access-token-ünïcode")
    assert b"access-token" not in stored
    assert cipher.decrypt(stored) == "access-token-ünïcode"


def test_rotated_out_key_listed_second_still_decrypts() -> None:
    old, new = new_key(), new_key()
    stored_with_old = TokenCipher(old).encrypt("t0k3n")
    rotated = TokenCipher(f"{new},{old}")
    assert rotated.decrypt(stored_with_old) == "t0k3n"
    rewritten = rotated.rotate(stored_with_old)
    assert TokenCipher(new).decrypt(rewritten) == "t0k3n"
    with pytest.raises(TokenDecryptError):
        TokenCipher(old).decrypt(rewritten)


def test_wrong_key_is_a_clear_error_not_garbage() -> None:
    stored = TokenCipher(new_key()).encrypt("t0k3n")
    with pytest.raises(TokenDecryptError, match="TOKEN_ENCRYPTION_KEY"):
        TokenCipher(new_key()).decrypt(stored)


def test_damaged_value_is_a_clear_error() -> None:
    cipher = TokenCipher(new_key())
    stored = bytearray(cipher.encrypt("t0k3n"))
    stored[-5] ^= 1
    with pytest.raises(TokenDecryptError):
        cipher.decrypt(bytes(stored))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "holds no key"),
        (" , ", "holds no key"),
        ("short", "entry 1 is not a Fernet key"),
        (f"{Fernet.generate_key().decode()},nope", "entry 2 is not a Fernet key"),
        ("ä" * 44, "entry 1 is not a Fernet key"),
    ],
)
def test_bad_keys_are_named_without_their_value(raw: str, message: str) -> None:
    with pytest.raises(TokenKeyError, match=message) as caught:
        TokenCipher(raw)
    if raw.strip(" ,"):
        assert raw.split(",")[-1] not in str(caught.value)
