"""The pure parts of bearer-token checking, with plain values: the claims a token must carry
(issuer, audience, leeway), which key checks it (the key's algorithm, never the token's
choice), and what of a JWKS document is taken as a signing key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from scrobble_gateway.auth import (
    KeyFromJwks,
    TokenRules,
    Unauthenticated,
    caller_from_claims,
    decode_claims,
    hmac_key,
    select_key,
)
from scrobble_gateway.jwks import BadKeySet, parse_key_set

SECRET = "unit-secret-of-the-token-checks-0123456789"
USER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
ISSUER = "https://auth.example"
AUDIENCE = "revenge-scrobble"
RULES = TokenRules(issuer=ISSUER, audience=AUDIENCE, leeway=timedelta(seconds=30))
HMAC = hmac_key(SECRET)
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP256R1())


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {"sub": str(USER), "iat": now, "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE}
    body.update(extra)
    return {name: value for name, value in body.items() if value is not None}


def hs256(**extra: Any) -> str:
    return jwt.encode(claims(**extra), SECRET, algorithm="HS256")


def jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, **fields: Any) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    else:
        public = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {**public, **fields}


def key_set(*entries: object) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


# --- claims ---------------------------------------------------------------------------------


def test_a_token_for_us_passes_and_names_the_caller() -> None:
    found = caller_from_claims(decode_claims(hs256(roles=["admin"]), HMAC, RULES))
    assert found.user_id == USER
    assert found.is_admin


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        # PyJWT checks iss before aud.
        ({"aud": "other-app", "iss": "https://other", "roles": ["admin"]}, "issuer"),
        ({"aud": "other-app"}, "audience"),
        ({"aud": ["other-app", "third"]}, "audience"),
        ({"iss": "https://other"}, "issuer"),
        ({"iss": ISSUER + "/"}, "issuer"),
        ({"aud": None}, "no aud claim"),
        ({"iss": None}, "no iss claim"),
        ({"exp": None}, "no exp claim"),
        ({"sub": None}, "no sub claim"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"iat": int(time.time()) + 3600}, "not valid yet"),
    ],
)
def test_what_is_refused(extra: dict[str, Any], says: str) -> None:
    with pytest.raises(Unauthenticated, match=says):
        decode_claims(hs256(**extra), HMAC, RULES)


def test_an_audience_list_holding_ours_passes() -> None:
    decode_claims(hs256(aud=["other-app", AUDIENCE]), HMAC, RULES)


def test_skew_within_the_leeway_is_forgiven_and_the_leeway_is_a_setting() -> None:
    now = int(time.time())
    skewed = [hs256(nbf=now + 10), hs256(iat=now + 10), hs256(exp=now - 10)]
    for token in skewed:
        decode_claims(token, HMAC, RULES)
    strict = TokenRules(ISSUER, AUDIENCE, leeway=timedelta(0))
    for token in skewed:
        with pytest.raises(Unauthenticated):
            decode_claims(token, HMAC, strict)


def test_explicitly_no_issuer_and_audience_take_any_or_none() -> None:
    none = TokenRules(issuer=None, audience=None, leeway=timedelta(seconds=30))
    decode_claims(hs256(aud="other-app", iss="https://other"), HMAC, none)
    decode_claims(hs256(aud=None, iss=None), HMAC, none)


# --- keys and algorithms --------------------------------------------------------------------


def test_the_header_picks_among_the_configured_keys_only() -> None:
    assert select_key({"alg": "HS256"}, HMAC, jwks=True) is HMAC
    assert select_key({"alg": "RS256", "kid": "k1"}, HMAC, jwks=True) == KeyFromJwks("k1")
    refused: list[tuple[dict[str, Any], jwt.PyJWK | None, bool]] = [
        ({"alg": "RS256", "kid": "k1"}, HMAC, False),
        ({"alg": "HS256"}, None, True),
        ({"alg": "none"}, HMAC, True),
        ({"alg": "HS512"}, HMAC, True),
        ({}, HMAC, True),
        ({"alg": "RS256"}, None, True),
        ({"alg": "ES256", "kid": ""}, None, True),
        ({"alg": "ES256", "kid": 7}, None, True),
    ]
    for header, configured, jwks in refused:
        with pytest.raises(Unauthenticated):
            select_key(header, configured, jwks=jwks)


def rsa_jwk() -> jwt.PyJWK:
    [key] = parse_key_set(key_set(jwk(RSA, kid="k1", alg="RS256"))).values()
    return key


@pytest.mark.parametrize(
    ("why", "token"),
    [
        ("PS256 by the RS256 key", jwt.encode(claims(), RSA, algorithm="PS256")),
        ("RS512 by the RS256 key", jwt.encode(claims(), RSA, algorithm="RS512")),
        ("ES256 by another key", jwt.encode(claims(), EC, algorithm="ES256")),
        ("HS256 by the secret", jwt.encode(claims(), SECRET, algorithm="HS256")),
    ],
)
def test_a_token_must_use_its_keys_algorithm(why: str, token: str) -> None:
    with pytest.raises(Unauthenticated, match="algorithm is not its key's"):
        decode_claims(token, rsa_jwk(), RULES)


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    pem = RSA.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def part(value: bytes) -> bytes:
        return base64.urlsafe_b64encode(value).rstrip(b"=")

    signing_input = (
        part(b'{"alg":"HS256","typ":"JWT"}') + b"." + part(json.dumps(claims()).encode())
    )
    signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + part(signature)).decode()
    with pytest.raises(Unauthenticated):
        decode_claims(token, rsa_jwk(), RULES)
    with pytest.raises(Unauthenticated):
        decode_claims(token, HMAC, RULES)


def test_the_right_algorithm_passes() -> None:
    decode_claims(jwt.encode(claims(), RSA, algorithm="RS256"), rsa_jwk(), RULES)


# --- what of a JWKS is a signing key --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<html>login</html>",
        b"",
        b"[]",
        b'{"keys": {}}',
        b'{"no": "keys"}',
        b"\xff\xfe",
        b'{"keys": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # was a RecursionError
        b'{"keys": [{"kid": "k", "n": 1e999}]}',
    ],
)
def test_garbage_is_not_a_key_set(body: bytes) -> None:
    with pytest.raises(BadKeySet):
        parse_key_set(body)


def test_only_usable_asymmetric_signing_keys_are_taken_each_with_one_algorithm() -> None:
    secret_b64 = base64.urlsafe_b64encode(b"x" * 32).decode().rstrip("=")
    private = json.loads(RSAAlgorithm.to_jwk(RSA))
    found = parse_key_set(
        key_set(
            jwk(RSA, kid="rs", alg="RS256", use="sig"),
            jwk(RSA, kid="ps", alg="PS256"),
            jwk(RSA, kid="rs-default"),
            jwk(EC, kid="ec"),
            jwk(EC, kid="ec-as-rsa", alg="RS256"),
            jwk(RSA, kid="enc", use="enc"),
            jwk(RSA, kid="weird-alg", alg="RSA-OAEP"),
            jwk(RSA),  # no kid
            {"kty": "oct", "k": secret_b64, "kid": "oct", "alg": "HS256"},
            {"kty": "oct", "k": secret_b64, "kid": "oct-no-alg"},
            {**private, "kid": "private"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kid": "no-kty"},
            "not a key",
            jwk(RSA, kid="rs", alg="RS512"),  # a second "rs": the first one wins
        )
    )
    assert {kid: key.algorithm_name for kid, key in found.items()} == {
        "rs": "RS256",
        "ps": "PS256",
        "rs-default": "RS256",
        "ec": "ES256",
    }
