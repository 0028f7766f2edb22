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
from html.parser import HTMLParser
from http.cookies import Morsel, SimpleCookie
from typing import Any
from urllib.parse import urljoin

import asyncpg
import httpx
import jwt
from aiohttp import web
from cryptography.fernet import Fernet

from scrobble_gateway.app import create_app
from scrobble_gateway.main import PathOnlyAccessLogger
from scrobble_sandbox import Sandbox
from scrobble_sandbox.librefm.fake import LibrefmFake
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.settings import Settings, load_settings
from tests.support import databases
from tests.support.infra import Infra

JWT_SECRET = "connect-tests-jwt-secret-0123456789abcdef"
JWT_ISSUER = JWT_AUDIENCE = "revenge-scrobble-connect-tests"
RETURN_PREFIX = "http://app.example.test/settings/"
API = "/api/v1/scrobble"
HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
# Where each fake takes the code (or, for Last.fm, the token) to exchange.
TOKEN_PATHS = {"trakt": "/oauth/token", "simkl": "/oauth/token", "anilist": "/token"}


def auth(user: uuid.UUID) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": str(user), "iss": JWT_ISSUER, "aud": JWT_AUDIENCE}
    token = jwt.encode({**claims, "iat": now, "exp": now + 600}, JWT_SECRET, "HS256")
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ConnectGateway:
    url: str
    app: web.Application
    settings: Settings
    cipher: TokenCipher
    database_url: str

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await databases.fetch(self.database_url, query, *args)

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
        "GATEWAY_JWT_ISSUER": JWT_ISSUER,
        "GATEWAY_JWT_AUDIENCE": JWT_AUDIENCE,
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
        "librefm": sandbox.fake("librefm", LibrefmFake).state.sessions,
        "listenbrainz": sandbox.listenbrainz.state.tokens,
    }
    return stores[service].user_for(token)


def exchanges(sandbox: Sandbox, service: str) -> list[Any]:
    """The token exchanges (Last.fm, Libre.fm: auth.getSession calls) the service's fake
    received."""
    if service in ("lastfm", "librefm"):
        return [
            r
            for r in sandbox.fakes[service].requests("/", method="POST")
            if isinstance(r.body, dict) and r.body.get("method") == "auth.getSession"
        ]
    fakes: dict[str, Any] = {
        "trakt": sandbox.trakt,
        "simkl": sandbox.simkl,
        "anilist": sandbox.anilist,
    }
    return list(fakes[service].requests(TOKEN_PATHS[service]))


def set_cookies(answer: httpx.Response) -> dict[str, Morsel[str]]:
    """The cookies an answer sets, by name, with their attributes."""
    found: dict[str, Morsel[str]] = {}
    for header in answer.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        found.update(jar)
    return found


# --- a browser, played by httpx -----------------------------------------------------------


async def follow(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    """Follow redirects like a browser, but stop at our own 303 to the return URL (the
    app at the return URL does not exist in the tests)."""
    answer = await client.get(url, **kwargs)
    for _ in range(10):
        location = answer.headers.get("Location")
        if answer.status_code not in (302, 303) or location is None:
            return answer
        if location.startswith(RETURN_PREFIX) or location.startswith("https://evil"):
            return answer
        answer = await client.get(urljoin(str(answer.url), location), **kwargs)
    raise AssertionError("too many redirects")


async def callback_url(client: httpx.AsyncClient, authorization_url: str) -> str:
    """Where the (auto-approving) fake sends the browser back: our callback with its code."""
    answer = await client.get(authorization_url)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


async def decide(
    client: httpx.AsyncClient, page: httpx.Response, decision: str, **typed: str
) -> httpx.Response:
    """Press Approve or Deny on a fake's consent page."""
    assert page.status_code == 200, page.text
    form = _Forms()
    form.feed(page.text)
    data = {**form.fields, **typed, "decision": decision}
    return await client.post(urljoin(str(page.url), form.action), data=data)
