"""A provider's answer text on its way to history, dead letters, connection reasons and log
lines (issue 15): the Deliverer in-process against a hostile server that answers with HTML
error pages, endless messages and the caller's own credentials echoed back (tokens, session
keys, signatures, refresh tokens, client secrets). What gets stored and shown by the
gateway's API is short plain text with none of them, and no log line holds one."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer

from scrobble_dispatcher.decide import DeliveryPolicy
from scrobble_dispatcher.delivery import Deliverer
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared.db.connect import create_pool
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.trackers.http import REASON_LIMIT, AppCredentials, ServiceClient
from scrobble_shared.trackers.lastfm.client import LastfmClient
from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient
from scrobble_shared.trackers.refresh import RefreshConfig
from scrobble_shared.trackers.simkl.client import SimklClient
from scrobble_shared.trackers.trakt.client import TraktClient
from tests.integration.gateway.conftest import Gateway, open_gateway
from tests.support.delivery import deliver_once, queue_work
from tests.support.infra import Infra
from tests.support.topics import Topics

pytestmark = pytest.mark.integration
USER = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
TOKEN = "user-access-token-0f9e8d7c6b"
REFRESH = "user-refresh-token-1a2b3c4d5e"
SESSION_KEY = "lastfm-session-key-9z8y7x6w"
CLIENT_SECRET = "app-client-secret-5q4w3e2r1t"
APP = AppCredentials("public-client-id", CLIENT_SECRET)
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><script>steal()</script>"
    "</head><body><h1>502 Bad Gateway</h1><p>the upstream is gone</p></body></html>"
)
MOVIE = {"type": "movie", "title": "Heat", "year": 1995, "external_ids": {"imdb": "tt0113277"}}
TRACK = {"type": "track", "title": "Windowlicker", "artists": ["Aphex Twin"], "duration_ms": 1}


@dataclass
class Hostile:
    """Answers each call with the next planned answer for its path, echoing what it got."""

    plans: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)

    def plan(self, path: str, status: int, body: str, content_type: str = "application/json"):
        self.plans.setdefault(path, []).append((status, body, content_type))

    async def handle(self, request: web.Request) -> web.Response:
        status, body, content_type = self.plans[request.path].pop(0)
        echoed = body.replace("{auth}", request.headers.get("Authorization", "")).replace(
            "{body}", json.dumps(await request.text())[1:-1]
        )
        return web.Response(status=status, text=echoed, content_type=content_type)


@dataclass
class Setup:
    pool: asyncpg.Pool
    deliverer: Deliverer
    gateway: Gateway
    hostile: Hostile

    async def queue(
        self, connection_id: uuid.UUID, service: str, item: dict[str, Any]
    ) -> uuid.UUID:
        return await queue_work(
            self.pool, connection_id, USER, service, "scrobble", item, progress_percent=95.0
        )

    async def attempt(self, scrobble_id: uuid.UUID) -> str:
        return await deliver_once(self.pool, self.deliverer, scrobble_id)

    async def api(self, path: str, *roles: str) -> Any:
        answer = await self.gateway.client.get(
            f"/api/v1/scrobble/{path}", headers=self.gateway.auth(USER, *roles)
        )
        assert answer.status == 200, await answer.text()
        return await answer.json()


@pytest_asyncio.fixture
async def setup(database_url: str, infra: Infra, topics: Topics) -> AsyncIterator[Setup]:
    hostile = Hostile()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hostile.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    for service in ("simkl", "lastfm"):
        await topics.create(f"scrobble.{service}.dlq")
    gateway = await open_gateway(infra, database_url, topics)
    pool = await create_pool(database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    clients: dict[str, ServiceClient] = {
        "trakt": TraktClient(f"{base}/trakt", APP),
        "simkl": SimklClient(f"{base}/simkl", APP),
        "lastfm": LastfmClient(f"{base}/lastfm/", APP),
        "listenbrainz": ListenBrainzClient(f"{base}/lb/1"),
    }
    http = {service: ClientSet(2) for service in clients}
    deliverer = Deliverer(
        pool,
        gateway.cipher,
        clients,
        http,
        OutboxRelay(pool, producer, infra.kafka_bootstrap),
        DeliveryPolicy(3, timedelta(seconds=1), topics.name("scrobble."), {}),
        refresh={"trakt": RefreshConfig.trakt(f"{base}/trakt", APP)},
    )
    try:
        yield Setup(pool, deliverer, gateway, hostile)
    finally:
        for client in http.values():
            await client.aclose()
        await producer.stop()
        await pool.close()
        await gateway.client.close()
        await server.close()


SECRETS = (TOKEN, REFRESH, SESSION_KEY, CLIENT_SECRET)


def assert_plain(text: str | None, where: str) -> None:
    assert text, where
    assert len(text) <= REASON_LIMIT, f"{where}: {len(text)} characters"
    for secret in SECRETS:
        assert secret not in text, f"{where}: {text}"
    for markup in ("<", ">", "steal()", "\r", "\n"):
        assert markup not in text, f"{where}: {text!r}"


async def test_provider_text_is_short_plain_and_holds_no_secret(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    later = datetime.now(UTC) + timedelta(days=7)
    simkl = await setup.gateway.connect(USER, "simkl", access_token=TOKEN)
    lastfm = await setup.gateway.connect(USER, "lastfm", access_token=SESSION_KEY)
    listenbrainz = await setup.gateway.connect(USER, "listenbrainz", access_token=TOKEN)
    trakt = await setup.gateway.connect(
        USER, "trakt", access_token=TOKEN, refresh_token=REFRESH, token_expires_at=later
    )
    hostile = setup.hostile
    # Simkl: a refusal that quotes the request's Authorization header, then an HTML page.
    hostile.plan("/simkl/scrobble/stop", 400, '{"message": "bad header Authorization: {auth}"}')
    hostile.plan("/simkl/scrobble/stop", 502, HTML_PAGE, "text/html")
    # Last.fm: an error whose message is the whole signed form (sk, api_sig) and then some.
    filler = "x" * 5000
    hostile.plan(
        "/lastfm/", 200, f'{{"error": 6, "message": "Invalid parameters: {{body}} {filler}"}}'
    )
    # ListenBrainz: the token refused, quoted back.
    hostile.plan("/lb/1/submit-listens", 401, '{"code": 401, "error": "Invalid token {auth}"}')
    # Trakt: 401, then the refresh refused with the token request's body (refresh token,
    # client secret) quoted in its error.
    hostile.plan("/trakt/scrobble/stop", 401, '{"error": "unauthorized"}')
    hostile.plan(
        "/trakt/oauth/token", 400, f'{{"error": "invalid_grant: {{body}} <b>{filler}</b>"}}'
    )

    dead_simkl = await setup.queue(simkl, "simkl", MOVIE)
    retried_simkl = await setup.queue(simkl, "simkl", MOVIE)
    dead_lastfm = await setup.queue(lastfm, "lastfm", TRACK)
    waiting_lb = await setup.queue(listenbrainz, "listenbrainz", TRACK)
    waiting_trakt = await setup.queue(trakt, "trakt", MOVIE)
    assert await setup.attempt(dead_simkl) == "dead"
    assert await setup.attempt(retried_simkl) == "retry"
    assert await setup.attempt(dead_lastfm) == "dead"
    assert await setup.attempt(waiting_lb) == "waiting"
    assert await setup.attempt(waiting_trakt) == "waiting"
    assert all(not plans for plans in hostile.plans.values()), hostile.plans  # all were asked

    rows = {
        r["id"]: r for r in await setup.pool.fetch("SELECT id, status, last_error FROM scrobbles")
    }
    for scrobble_id, row in rows.items():
        assert_plain(row["last_error"], f"scrobbles.last_error of {row['status']} {scrobble_id}")
    assert rows[dead_simkl]["last_error"].startswith("Simkl refused it: bad header")
    assert "502 Bad Gateway" in rows[retried_simkl]["last_error"]
    assert rows[dead_lastfm]["last_error"].startswith("Last.fm error 6: Invalid parameters")
    for row in await setup.pool.fetch("SELECT service, status_reason FROM connections"):
        if row["service"] in ("listenbrainz", "trakt"):
            assert_plain(row["status_reason"], f"status_reason of {row['service']}")
    for row in await setup.pool.fetch("SELECT headers FROM outbox"):
        headers = row["headers"] if isinstance(row["headers"], dict) else json.loads(row["headers"])
        assert_plain(str(headers.get("error.reason")), "dead letter header error.reason")

    # What the gateway shows: history, connections, the admin's dead letters.
    shown = [
        *(item["last_error"] for item in (await setup.api("history"))["items"]),
        *(
            item["status_reason"]
            for item in (await setup.api("connections"))["items"]
            if item["status_reason"]
        ),
        *(item["last_error"] for item in (await setup.api("admin/dead-letters", "admin"))["items"]),
    ]
    assert len(shown) == 5 + 2 + 2
    for text in shown:
        assert_plain(text, "gateway answer")

    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "dead:" in logged  # the dead letters were logged, with their reasons
    for secret in SECRETS:
        assert secret not in logged, [
            r.getMessage() for r in caplog.records if secret in r.getMessage()
        ]
