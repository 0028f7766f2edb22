"""Bearer tokens checked against a key set (GATEWAY_JWKS_URL) served over HTTP, as an
identity provider serves it: tokens signed by a key of the set, with the algorithm of that
key and our issuer and audience, pass; anything else is a 401, never a 500. Keys are cached
for GATEWAY_JWKS_CACHE_TTL, and unknown kids make the gateway ask again at most once per
GATEWAY_JWKS_REFETCH_INTERVAL. (A provider that fails: ``test_jwks_outage.py``.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization

from tests.integration.gateway.identity_provider import (
    AUDIENCE,
    ISSUER,
    IdentityProvider,
    client,
    ec_key,
    identity_provider,
    jwks_gateway,
    rsa_key,
)
from tests.support.infra import Infra
from tests.support.topics import Topics

pytestmark = pytest.mark.integration
__all__ = ["client"]  # the fixture, shared by the JWKS test modules
USER = uuid.UUID("0b9a1c52-7f43-4c1e-9d6a-3a7d2e1f5c10")
CONNECTIONS = "/api/v1/scrobble/connections"


@pytest.fixture
async def provider() -> AsyncIterator[IdentityProvider]:
    async with identity_provider() as started:
        started.publish("k1", alg="RS256")
        started.publish("e1", alg="ES256")
        yield started


async def status_of(client: TestClient[Any, Any], token: str) -> int:
    answer = await client.get(CONNECTIONS, headers={"Authorization": f"Bearer {token}"})
    return answer.status


async def test_a_token_signed_by_a_key_of_the_set_passes(
    client: TestClient[Any, Any], provider: IdentityProvider
) -> None:
    for kid in ("k1", "e1"):
        answer = await client.get(
            CONNECTIONS, headers={"Authorization": f"Bearer {provider.token(kid, USER)}"}
        )
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["items"] == []


async def test_other_keys_and_expired_tokens_are_refused(
    client: TestClient[Any, Any], provider: IdentityProvider
) -> None:
    stranger = rsa_key()
    cases = {
        "another key under a known kid": provider.token("k1", USER, key=stranger),
        "an unknown kid": provider.token("k9", USER, key=stranger),
        "expired": provider.token("k1", USER, exp=int(time.time()) - 120),
        "another audience": provider.token("k1", USER, aud="other-app"),
        "another issuer": provider.token("k1", USER, iss="https://other"),
        "no audience": provider.token("k1", USER, aud=None),
        "no issuer": provider.token("k1", USER, iss=None),
        "no kid": jwt.encode(
            {"sub": str(USER), "exp": int(time.time()) + 300}, stranger, algorithm="RS256"
        ),
        "HS256 with no secret configured": jwt.encode(
            {"sub": str(USER), "exp": int(time.time()) + 300},
            "a-guessed-shared-secret-of-32-bytes!",
            algorithm="HS256",
        ),
    }
    for case, token in cases.items():
        answer = await client.get(CONNECTIONS, headers={"Authorization": f"Bearer {token}"})
        assert answer.status == 401, case
        assert answer.headers["WWW-Authenticate"].startswith("Bearer"), case


def _hs256_signed_with_the_public_key(provider: IdentityProvider) -> str:
    """The classic confusion: HS256 with the RSA public key (PEM) as the shared secret."""
    private, _ = provider.keys["k1"]
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    now = int(time.time())
    claims = {"sub": str(USER), "exp": now + 300, "iss": ISSUER, "aud": AUDIENCE}

    def part(value: bytes) -> bytes:
        return base64.urlsafe_b64encode(value).rstrip(b"=")

    # By hand: PyJWT refuses to sign HS256 with a PEM key.
    signing_input = part(json.dumps(header).encode()) + b"." + part(json.dumps(claims).encode())
    signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + part(signature)).decode()


async def test_an_alg_that_does_not_match_the_key_of_its_kid_is_401_never_500(
    client: TestClient[Any, Any], provider: IdentityProvider
) -> None:
    rsa_private, _ = provider.keys["k1"]
    cases = {
        # The RSA key of k1 is published for RS256 only.
        "PS256 signed by the RS256 key": provider.token("k1", USER, alg="PS256"),
        "RS512 signed by the RS256 key": provider.token("k1", USER, alg="RS512"),
        "ES256 under the kid of an RSA key": provider.token("k1", USER, key=ec_key(), alg="ES256"),
        "RS256 under the kid of an EC key": provider.token(
            "e1", USER, key=rsa_private, alg="RS256"
        ),
        "HS256 keyed with the public key": _hs256_signed_with_the_public_key(provider),
    }
    seen = {case: await status_of(client, token) for case, token in cases.items()}
    print(f"\nalg/kid mismatches: {seen}")
    assert seen == dict.fromkeys(cases, 401)


async def test_a_withdrawn_key_stops_working_within_the_cache_ttl(
    infra: Infra, database_url: str, topics: Topics, provider: IdentityProvider
) -> None:
    ttl_s = 1.0
    async with jwks_gateway(
        infra, database_url, topics, provider.url, GATEWAY_JWKS_CACHE_TTL=f"{ttl_s:g}s"
    ) as client:
        token = provider.token("k1", USER)
        assert await status_of(client, token) == 200
        provider.withdraw("k1")
        withdrawn = time.monotonic()
        deadline = withdrawn + 15 * ttl_s
        statuses: list[int] = []
        while time.monotonic() < deadline:
            statuses.append(await status_of(client, token))
            if statuses[-1] != 200:
                break
            await asyncio.sleep(0.05)
        refused_after = time.monotonic() - withdrawn
        print(
            f"\nwithdrawn key: refused after {refused_after:.2f} s (TTL {ttl_s:g} s), "
            f"{len(statuses)} request(s), {provider.fetches} JWKS fetch(es)"
        )
        assert statuses[-1] == 401, f"still accepted {refused_after:.1f} s after withdrawal"
        assert set(statuses[:-1]) <= {200}


async def test_unknown_kids_make_at_most_one_fetch_per_interval(
    infra: Infra, database_url: str, topics: Topics, provider: IdentityProvider
) -> None:
    async with jwks_gateway(
        infra, database_url, topics, provider.url, GATEWAY_JWKS_REFETCH_INTERVAL="2s"
    ) as client:
        assert await status_of(client, provider.token("k1", USER)) == 200
        assert provider.fetches == 1
        stranger = rsa_key()
        unknown = [
            await status_of(client, provider.token(f"unknown-{n}", USER, key=stranger))
            for n in range(20)
        ]
        assert unknown == [401] * 20
        after_unknown = provider.fetches
        # A key published now is found at the next refetch the interval allows.
        provider.publish("k2")
        published = time.monotonic()
        statuses: list[int] = []
        while time.monotonic() < published + 30:
            statuses.append(await status_of(client, provider.token("k2", USER)))
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.05)
        print(
            f"\n20 unknown kids: {after_unknown - 1} refetch(es); a new kid found after "
            f"{time.monotonic() - published:.2f} s and {len(statuses)} request(s); "
            f"{provider.fetches} fetch(es) in all"
        )
        assert after_unknown == 2, "one refetch for twenty unknown kids"
        assert statuses[-1] == 200
        assert provider.fetches == 3, "one more refetch once the interval had passed"
