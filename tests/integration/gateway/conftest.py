"""A gateway of one's own per test: private database and topics, the app served in-process
(aiohttp's TestServer on a loopback port) with a real pool and a real Kafka producer.

``gateway.auth(user)`` makes the headers of a valid bearer token for that user: signed with
the test gateway's secret and carrying its issuer and audience.

The connect tests (httpx or a real Chromium as the browser) take ``gw``: the gateway as
``scrobble gateway`` serves it, talking to the sandbox's fakes (``sb``, one sandbox server
for the session, reset before each test).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from playwright.async_api import Browser

from scrobble_gateway.app import create_app
from scrobble_gateway.main import PathOnlyAccessLogger
from scrobble_sandbox import Sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import NewConnection, create_connection
from scrobble_shared.settings import Settings, load_settings
from scrobble_shared.trackers.registry import SERVICES
from tests.integration.gateway.browser_support import chromium
from tests.integration.gateway.test_connect_support import ConnectGateway, serve_gateway
from tests.support import databases
from tests.support.infra import Infra
from tests.support.sandbox import sandbox_server, sb
from tests.support.topics import Topics

__all__ = ["sandbox_server", "sb"]  # the fixtures

JWT_SECRET = "test-secret-of-the-gateway-0123456789abcdef"
JWT_ISSUER = "https://auth.gateway-tests.example"
JWT_AUDIENCE = "revenge-scrobble-gateway-tests"
# What a gateway of the tests needs to check bearer tokens (HS256, our iss and aud).
JWT_ENVIRON = {
    "GATEWAY_JWT_SECRET": JWT_SECRET,
    "GATEWAY_JWT_ISSUER": JWT_ISSUER,
    "GATEWAY_JWT_AUDIENCE": JWT_AUDIENCE,
}


def make_token(
    user: uuid.UUID | str,
    roles: tuple[str, ...] = (),
    *,
    secret: str = JWT_SECRET,
    expires_in: float = 600,
    **claims: Any,
) -> str:
    """A token the test gateway accepts; ``claims`` add to or replace its claims, and a
    claim given as None is left out (``iss=None``: a token without an issuer)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": str(user),
        "iat": now,
        "exp": now + int(expires_in),
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
    }
    if roles:
        payload["roles"] = list(roles)
    if "claims_roles" in claims:  # a roles claim of any shape, to test bad ones
        payload["roles"] = claims.pop("claims_roles")
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Gateway:
    client: TestClient[Any, Any]
    settings: Settings
    database_url: str
    service_topics: dict[str, str]
    cipher: TokenCipher

    def auth(self, user: uuid.UUID, *roles: str) -> dict[str, str]:
        return bearer(make_token(user, roles))

    async def connect(
        self,
        user: uuid.UUID,
        service: str = "trakt",
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        **settings: Any,
    ) -> uuid.UUID:
        conn = await asyncpg.connect(self.database_url)
        try:
            created = await create_connection(
                conn,
                self.cipher,
                NewConnection(
                    user_id=user,
                    service=service,
                    access_token=access_token,
                    refresh_token=refresh_token,
                    **settings,
                ),
            )
        finally:
            await conn.close()
        return created.id

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await databases.fetch(self.database_url, query, *args)


@dataclass
class AnswerLog:
    """Every answer ``keep`` was given, body and headers as text, for the tests that look
    for secrets in what the gateway sent back."""

    texts: list[str] = field(default_factory=list)

    async def keep(self, answer: ClientResponse) -> ClientResponse:
        self.texts.append(await answer.text())
        self.texts.append(repr(dict(answer.headers)))
        return answer

    def joined(self) -> str:
        return "\n".join(self.texts)


def gateway_environ(infra: Infra, database_url: str, prefix: str, key: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "TOKEN_ENCRYPTION_KEY": key,
        **JWT_ENVIRON,
        "SCROBBLE_TOPIC_PREFIX": prefix,
    }


async def open_gateway(
    infra: Infra,
    database_url: str,
    topics: Topics,
    prepare: Callable[[web.Application], None] | None = None,
    *,
    environ_extra: dict[str, str] | None = None,
    **server_options: Any,
) -> Gateway:
    """Start a gateway (``prepare`` may add to the app first, ``environ_extra`` to its
    settings); close with ``client.close()``."""
    service_topics: dict[str, str] = {s: await topics.create(f"scrobble.{s}") for s in SERVICES}
    key = Fernet.generate_key().decode()
    environ = gateway_environ(infra, database_url, topics.name("scrobble."), key)
    environ.update(environ_extra or {})
    settings = load_settings(environ)
    app = create_app(settings)
    if prepare is not None:
        prepare(app)
    server = TestServer(app)
    await server.start_server(**server_options)
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    return Gateway(client, settings, database_url, service_topics, TokenCipher(key))


async def open_logged_gateway(infra: Infra, database_url: str, topics: Topics) -> Gateway:
    """A gateway logging access as ``scrobble gateway`` does (paths only, no query strings),
    for the tests that read every log line; close with ``client.close()``."""
    return await open_gateway(
        infra,
        database_url,
        topics,
        access_log_class=PathOnlyAccessLogger,
        access_log=logging.getLogger("scrobble_gateway.access"),
    )


@pytest.fixture
async def gateway(infra: Infra, database_url: str, topics: Topics) -> AsyncIterator[Gateway]:
    started = await open_gateway(infra, database_url, topics)
    try:
        yield started
    finally:
        await started.client.close()


# Generated suites send thousands of requests as one user within a minute: quotas that
# never bite, so every request reaches the handlers (test_quotas.py tests the quotas).
UNTHROTTLED = {
    "GATEWAY_QUOTA_READS_PER_MINUTE": "1000000",
    "GATEWAY_QUOTA_WRITES_PER_MINUTE": "1000000",
    "GATEWAY_MAX_IMPORT_JOBS_PER_DAY": "10000",
}


@pytest.fixture
async def unthrottled_gateway(
    infra: Infra, database_url: str, topics: Topics
) -> AsyncIterator[Gateway]:
    started = await open_gateway(infra, database_url, topics, environ_extra=UNTHROTTLED)
    try:
        yield started
    finally:
        await started.client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def gw(infra: Infra, database_url: str, sb: Sandbox) -> AsyncIterator[ConnectGateway]:
    async with serve_gateway(infra, database_url, sb) as gateway:
        yield gateway


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A browser played by httpx: its own cookie jar, no redirect followed by itself."""
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """A real headless Chromium for the module; each test opens contexts of its own."""
    async with chromium() as launched:
        yield launched
