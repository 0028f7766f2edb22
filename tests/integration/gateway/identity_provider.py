"""A fake identity provider for the JWKS tests: serves its public keys as a JWKS over HTTP
(aiohttp's TestServer on a loopback port), signs tokens with the private halves, counts the
fetches it answers, and can be told to fail: answer 503, answer garbage, or hold every
fetch until the test releases it (a slow or hung endpoint).

And the gateway the JWKS tests talk to: the real app, checking tokens against that JWKS.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from scrobble_gateway.app import create_app
from scrobble_shared.settings import load_settings
from tests.support.infra import Infra
from tests.support.topics import Topics

ISSUER = "https://idp.jwks-tests.example"
AUDIENCE = "revenge-scrobble-jwks-tests"
JWKS_PATH = "/.well-known/jwks.json"
# How long a held fetch waits for release before it answers anyway (a deadline, so that a
# test that forgets to release cannot hang).
HOLD_DEADLINE_S = 30.0

Mode = Literal["ok", "error", "garbage", "hold"]
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: SigningKey, kid: str, alg: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    else:
        public = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": alg}


def signed_token(
    key: SigningKey, kid: str, user: uuid.UUID, *, alg: str = "RS256", **claims: Any
) -> str:
    """A token with our issuer and audience; a claim given as None is left out."""
    now = int(time.time())
    payload = {
        "sub": str(user),
        "iat": now,
        "exp": now + 300,
        "iss": ISSUER,
        "aud": AUDIENCE,
        **claims,
    }
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


@dataclass
class IdentityProvider:
    """Keys by kid; ``mode`` says how the next fetches are answered."""

    server: TestServer
    keys: dict[str, tuple[SigningKey, str]] = field(default_factory=dict)
    mode: Mode = "ok"
    # Added to every answer (also to failures): a slow provider.
    delay_s: float = 0.0
    fetches: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a fetch is being held (mode "hold").
    holding: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return str(self.server.make_url(JWKS_PATH))

    def publish(self, kid: str, key: SigningKey | None = None, alg: str = "RS256") -> SigningKey:
        signing = (
            key if key is not None else (rsa_key() if alg.startswith(("RS", "PS")) else ec_key())
        )
        self.keys[kid] = (signing, alg)
        return signing

    def withdraw(self, kid: str) -> None:
        del self.keys[kid]

    def token(
        self,
        kid: str,
        user: uuid.UUID,
        *,
        key: SigningKey | None = None,
        alg: str | None = None,
        **claims: Any,
    ) -> str:
        """A token under ``kid``, signed by that kid's key unless ``key``/``alg`` say else."""
        known_key, known_alg = self.keys.get(kid, (None, "RS256"))
        signing = key if key is not None else known_key
        if signing is None:
            signing = rsa_key()
        return signed_token(signing, kid, user, alg=alg or known_alg, **claims)

    def key_set(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key, kid, alg) for kid, (key, alg) in self.keys.items()]}

    async def answer(self, _: web.Request) -> web.StreamResponse:
        self.fetches += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.mode == "hold":
            # Hung: answers only once released (or at the deadline).
            self.holding.set()
            try:
                async with asyncio.timeout(HOLD_DEADLINE_S):
                    await self.released.wait()
            except TimeoutError:
                pass
        if self.mode == "error":
            return web.Response(status=503, text="upstream unavailable")
        if self.mode == "garbage":
            return web.Response(status=200, text="<html>login</html>", content_type="text/html")
        return web.json_response(self.key_set())


@asynccontextmanager
async def identity_provider() -> AsyncIterator[IdentityProvider]:
    app = web.Application()
    server = TestServer(app)
    provider = IdentityProvider(server)
    app.router.add_get(JWKS_PATH, provider.answer)
    await server.start_server()
    try:
        yield provider
    finally:
        provider.released.set()
        await server.close()


def jwks_environ(
    infra: Infra, database_url: str, topics: Topics, jwks_url: str, **environ: str
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "GATEWAY_JWKS_URL": jwks_url,
        "GATEWAY_JWT_ISSUER": ISSUER,
        "GATEWAY_JWT_AUDIENCE": AUDIENCE,
        "SCROBBLE_TOPIC_PREFIX": topics.name("scrobble."),
        **environ,
    }


@asynccontextmanager
async def jwks_gateway(
    infra: Infra, database_url: str, topics: Topics, jwks_url: str, **environ: str
) -> AsyncIterator[TestClient[Any, Any]]:
    """The gateway checking tokens against ``jwks_url``; ``environ`` adds settings."""
    settings = load_settings(jwks_environ(infra, database_url, topics, jwks_url, **environ))
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
async def client(
    infra: Infra, database_url: str, topics: Topics, provider: IdentityProvider
) -> AsyncIterator[TestClient[Any, Any]]:
    """The fixture of the JWKS tests: a gateway checking tokens against the test module's
    ``provider`` fixture."""
    async with jwks_gateway(infra, database_url, topics, provider.url) as started:
        yield started
