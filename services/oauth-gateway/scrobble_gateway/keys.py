"""What the gateway's handlers find on the app and the request: typed app keys set by the
app factory (``app.py``), and the caller the bearer-token middleware put on the request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

import asyncpg
import httpx
from aiohttp import web
from aiokafka import AIOKafkaProducer

from scrobble_gateway.pagination import CursorSigner
from scrobble_gateway.quotas import QuotaBuckets
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.settings import Settings

SETTINGS: Final = web.AppKey("settings", Settings)
POOL: Final = web.AppKey("pool", asyncpg.Pool)
CIPHER: Final = web.AppKey("cipher", TokenCipher)
# One long-lived client for every call the gateway makes to a service (token exchange,
# session, validate-token, revoke); explicit timeouts and our User-Agent are set on it.
HTTP: Final = web.AppKey("http", httpx.AsyncClient)
# The outbox producer (also what /readyz asks about Kafka) and the relay that publishes
# hand-queued work after its transaction committed.
PRODUCER: Final = web.AppKey("producer", AIOKafkaProducer)
RELAY: Final = web.AppKey("relay", OutboxRelay)
# Signs the list routes' cursors and opens them again (pagination.py).
CURSORS: Final = web.AppKey("cursors", CursorSigner)
# This process's per-user token buckets (quotas.py).
QUOTAS: Final = web.AppKey("quotas", QuotaBuckets)


@dataclass(frozen=True)
class Caller:
    """Who sent the request, from a verified bearer token: ``sub`` and the ``roles`` claim."""

    user_id: uuid.UUID
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


_CALLER: Final = web.RequestKey("caller", Caller)


def set_caller(request: web.Request, caller: Caller) -> None:
    request[_CALLER] = caller


def find_caller(request: web.Request) -> Caller | None:
    """The authenticated caller, or None on the routes that need no token."""
    return request.get(_CALLER)


def caller(request: web.Request) -> Caller:
    """The authenticated caller; routes reached without the auth middleware have none."""
    if _CALLER not in request:
        raise RuntimeError("route is not behind the bearer-token middleware")
    return request[_CALLER]
