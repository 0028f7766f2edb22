"""Bearer tokens checked against a key set (GATEWAY_JWKS_URL) served over HTTP, as an
identity provider serves it: RS256 tokens signed by a key in the set pass, others get 401."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from scrobble_gateway.app import create_app
from scrobble_shared.settings import load_settings
from tests.support.infra import Infra
from tests.support.topics import Topics

pytestmark = pytest.mark.integration
USER = uuid.UUID("0b9a1c52-7f43-4c1e-9d6a-3a7d2e1f5c10")


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": str(USER), "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def jwks_client(infra: Infra, database_url: str, topics: Topics) -> AsyncIterator[Any]:
    key = rsa_key()
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    key_set = {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(key_set)

    provider = web.Application()
    provider.router.add_get("/.well-known/jwks.json", jwks)
    idp = TestServer(provider)
    await idp.start_server()
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "GATEWAY_JWKS_URL": str(idp.make_url("/.well-known/jwks.json")),
            "SCROBBLE_TOPIC_PREFIX": topics.name("scrobble."),
        }
    )
    gateway = TestClient(TestServer(create_app(settings)))
    await gateway.start_server()
    try:
        yield gateway, key
    finally:
        await gateway.close()
        await idp.close()


async def test_a_token_signed_by_a_key_of_the_set_passes(jwks_client: Any) -> None:
    client, key = jwks_client
    answer = await client.get(
        "/api/v1/scrobble/connections",
        headers={"Authorization": f"Bearer {signed(key, 'k1')}"},
    )
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["items"] == []


async def test_other_keys_and_expired_tokens_are_refused(jwks_client: Any) -> None:
    client, key = jwks_client
    stranger = rsa_key()
    cases = {
        "another key under a known kid": signed(stranger, "k1"),
        "an unknown kid": signed(stranger, "k9"),
        "expired": signed(key, "k1", exp=int(time.time()) - 60),
        "HS256 with no secret configured": jwt.encode(
            {"sub": str(USER), "exp": int(time.time()) + 300},
            "a-guessed-shared-secret-of-32-bytes!",
            algorithm="HS256",
        ),
    }
    for case, token in cases.items():
        answer = await client.get(
            "/api/v1/scrobble/connections", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status == 401, case
        assert answer.headers["WWW-Authenticate"].startswith("Bearer"), case
