"""Tokens never appear in a response or a log line: the bearer JWT, the stored access and
refresh tokens, or an OAuth code in a callback's query string."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from tests.integration.gateway.conftest import AnswerLog, bearer, make_token, open_logged_gateway
from tests.support.infra import Infra
from tests.support.topics import Topics

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
ACCESS = "trakt-access-4f1c9e2b7a6d5c3e"
REFRESH = "trakt-refresh-8b2d6f0a4c1e3d5f"
SESSION = "lastfm-session-0a1b2c3d4e5f6a7b"
OAUTH_CODE = "oauth-code-6e5d4c3b2a1f0e9d"


async def test_no_token_reaches_a_response_or_a_log_line(
    infra: Infra, database_url: str, topics: Topics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = await open_logged_gateway(infra, database_url, topics)
    jwt_token = make_token(ALICE)
    expired = make_token(ALICE, expires_in=-120)  # beyond GATEWAY_JWT_LEEWAY
    alice = bearer(jwt_token)
    seen = AnswerLog()
    keep = seen.keep

    try:
        trakt = await gateway.connect(ALICE, "trakt", access_token=ACCESS, refresh_token=REFRESH)
        lastfm = await gateway.connect(ALICE, "lastfm", access_token=SESSION)
        client = gateway.client
        await keep(await client.get("/api/v1/scrobble/connections", headers=alice))
        request: dict[str, Any] = {
            "content_type": "movie",
            "content_id": str(uuid.uuid4()),
            "action": "stop",
            "progress_percent": 100,
            "external_ids": {"tmdb": 949},
        }
        queued = await keep(
            await client.post(
                "/api/v1/scrobble/queue",
                json={"connection_id": str(trakt), "request": request},
                headers=alice,
            )
        )
        assert queued.status == 202
        await keep(await client.get("/api/v1/scrobble/history", headers=alice))
        await keep(
            await client.put(
                f"/api/v1/scrobble/connections/{trakt}", json={"enabled": 3}, headers=alice
            )
        )
        await keep(await client.get("/api/v1/scrobble/connections", headers=bearer(expired)))
        await keep(
            await client.get(f"/api/v1/scrobble/trakt/callback?code={OAUTH_CODE}&state={'s' * 43}")
        )
        # Disconnecting hands the tokens to the revoke call, and logs if that fails.
        for connection in (lastfm, trakt):
            deleted = await keep(
                await client.delete(f"/api/v1/scrobble/connections/{connection}", headers=alice)
            )
            assert deleted.status == 204
    finally:
        await gateway.client.close()

    logged = caplog.text
    # The captured logs are real: the access log saw the callback, by path only.
    assert "/api/v1/scrobble/trakt/callback" in logged
    everything = seen.joined() + "\n" + logged
    for secret in (jwt_token, expired, ACCESS, REFRESH, SESSION, OAUTH_CODE):
        assert secret not in everything
    # Nor the parts of a JWT (its signature alone identifies it).
    assert jwt_token.rsplit(".", 1)[1] not in everything
