"""Which configured key opens a stored token, and re-encrypting only what is not under the
first key yet (issue 15: key rotation decides by trying the first key, since a Fernet token
carries no key id)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from scrobble_shared.crypto import TokenCipher, TokenDecryptError


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_key_position_names_the_key_that_opens_a_token() -> None:
    newest, older, oldest, unknown = new_key(), new_key(), new_key(), new_key()
    cipher = TokenCipher(f"{newest},{older},{oldest}")
    assert cipher.key_count == 3
    assert cipher.key_position(TokenCipher(newest).encrypt("t")) == 0
    assert cipher.key_position(TokenCipher(older).encrypt("t")) == 1
    assert cipher.key_position(TokenCipher(oldest).encrypt("t")) == 2
    assert cipher.key_position(TokenCipher(unknown).encrypt("t")) is None
    assert cipher.key_position(b"not a fernet token") is None


def test_reencrypt_rewrites_only_what_the_first_key_does_not_open() -> None:
    new, old = new_key(), new_key()
    cipher = TokenCipher(f"{new},{old}")
    current = cipher.encrypt("fresh")
    assert cipher.reencrypt(current) is None  # already under the first key: left alone
    rewritten = cipher.reencrypt(TokenCipher(old).encrypt("stale"))
    assert rewritten is not None
    assert TokenCipher(new).decrypt(rewritten) == "stale"
    with pytest.raises(TokenDecryptError):
        TokenCipher(old).decrypt(rewritten)


def test_reencrypt_refuses_what_no_key_opens_without_showing_it() -> None:
    cipher = TokenCipher(new_key())
    stranger = TokenCipher(new_key()).encrypt("secret-value")
    with pytest.raises(TokenDecryptError, match="TOKEN_ENCRYPTION_KEY") as caught:
        cipher.reencrypt(stranger)
    assert "secret-value" not in str(caught.value)
    assert stranger.decode() not in str(caught.value)
