"""What the connect tests (httpx and browser) share; holds no tests itself.

A gateway of the connect tests is the real app (``create_app``) served on a loopback port
that is known before the settings are built, because the callback URLs the services are
given contain it (``GATEWAY_PUBLIC_URL``). It talks to the sandbox's fakes, with a private
database per test.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import jwt
from aiohttp import web
from cryptography.fernet import Fernet

from scrobble_gateway.app import create_app
from scrobble_gateway.main import PathOnlyAccessLogger
from scrobble_sandbox import Sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.settings import Settings, load_settings
from tests.support.infra import Infra

JWT_SECRET = "connect-tests-jwt-secret-0123456789abcdef"
RETURN_PREFIX = "http://app.example.test/settings/"
API = "/api/v1/scrobble"


def auth(user: uuid.UUID) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"sub": str(user), "iat": now, "exp": now + 600}, JWT_SECRET, "HS256")
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ConnectGateway:
    url: str
    app: web.Application
    settings: Settings
    cipher: TokenCipher
    database_url: str

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def connections(self, user: uuid.UUID | None = None) -> list[asyncpg.Record]:
        """Every stored connection (of one user), with the raw token columns."""
        if user is None:
            return await self.sql("SELECT * FROM connections ORDER BY created_at")
        return await self.sql("SELECT * FROM connections WHERE user_id = $1", user)

    def access_token(self, row: asyncpg.Record) -> str:
        return self.cipher.decrypt(row["access_token_enc"])

    async def start(
        self,
        client: httpx.AsyncClient,
        user: uuid.UUID,
        service: str,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        return await client.post(
            f"{self.url}{API}/connect/{service}", json=body, headers=auth(user)
        )

    async def authorization_url(
        self, client: httpx.AsyncClient, user: uuid.UUID, service: str, **body: Any
    ) -> str:
        answer = await self.start(client, user, service, body or None)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert set(found) == {"authorization_url", "state"}
        return str(found["authorization_url"])


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def connect_environ(
    infra: Infra, database_url: str, sandbox: Sandbox, public_url: str, key: str
) -> dict[str, str]:
    return {
        **sandbox.env,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "TOKEN_ENCRYPTION_KEY": key,
        "GATEWAY_JWT_SECRET": JWT_SECRET,
        "GATEWAY_PUBLIC_URL": public_url,
        "GATEWAY_RETURN_URL_ALLOWLIST": RETURN_PREFIX,
    }


@asynccontextmanager
async def serve_gateway(
    infra: Infra, database_url: str, sandbox: Sandbox, **overrides: str
) -> AsyncIterator[ConnectGateway]:
    """The gateway app on a free loopback port; ``overrides`` are environment variables."""
    sock = _listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    key = Fernet.generate_key().decode()
    environ = {**connect_environ(infra, database_url, sandbox, url, key), **overrides}
    settings = load_settings({k: v for k, v in environ.items() if v is not None})
    # As `scrobble gateway` serves it: the access log never shows query strings.
    runner = web.AppRunner(
        create_app(settings),
        access_log=logging.getLogger("scrobble_gateway.access"),
        access_log_class=PathOnlyAccessLogger,
    )
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield ConnectGateway(url, runner.app, settings, TokenCipher(key), database_url)
    finally:
        await runner.cleanup()
        sock.close()


def token_owner(sandbox: Sandbox, service: str, token: str) -> str | None:
    """Whom the fake issued ``token`` to (None: not a live token of that fake)."""
    stores = {
        "trakt": sandbox.trakt.state.access,
        "simkl": sandbox.simkl.state.tokens,
        "anilist": sandbox.anilist.state.tokens,
        "lastfm": sandbox.lastfm.state.sessions,
        "listenbrainz": sandbox.listenbrainz.state.tokens,
    }
    return stores[service].user_for(token)
