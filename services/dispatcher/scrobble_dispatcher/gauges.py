"""Gauges of what is waiting, sampled from Postgres: queue depth and oldest queued age by
service, connections needing reconnect by service, and which services are enabled.

Every replica samples the same shared tables, so the series agree across replicas; alerts
and dashboards aggregate them with ``max``, not ``sum``. A failed sample is logged and the
previous values stay until the next one: the gauges are a view, never a reason to stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

import asyncpg
from prometheus_client import Gauge

from scrobble_shared.service_names import SERVICES

log = logging.getLogger(__name__)

QUEUE_DEPTH = Gauge(
    "scrobble_queue_depth",
    "Scrobble work not yet delivered (queued, sending, retrying)",
    ["service"],
)
OLDEST_AGE = Gauge(
    "scrobble_queue_oldest_age_seconds",
    "Age of the oldest undelivered work of active connections, 0 when none waits",
    ["service"],
)
NEEDS_RECONNECT = Gauge(
    "scrobble_connections_needing_reconnect",
    "Connections whose tokens were refused; their work waits for the user",
    ["service"],
)
SERVICE_ENABLED = Gauge(
    "scrobble_service_enabled",
    "1 when the service has app credentials and is delivered to",
    ["service"],
)

SAMPLE_EVERY_S: Final = 15.0

# Work of a connection that needs reconnecting waits for its user on purpose: it counts in
# the depth but not in the oldest age, so one revoked account cannot hold the age alert on.
_QUEUE_SQL: Final = """
    SELECT s.service, count(*) AS depth,
           coalesce(extract(epoch FROM now() - min(s.created_at)
                    FILTER (WHERE c.status = 'active')), 0) AS oldest_s
    FROM scrobbles s JOIN connections c ON c.id = s.connection_id
    WHERE s.status IN ('queued', 'sending', 'retrying')
    GROUP BY s.service
"""
_RECONNECT_SQL: Final = """
    SELECT service, count(*) AS n FROM connections
    WHERE status = 'needs_reconnect' GROUP BY service
"""


def mark_enabled(enabled: Iterable[str]) -> None:
    on = set(enabled)
    for service in SERVICES:
        SERVICE_ENABLED.labels(service).set(1 if service in on else 0)


async def sample(pool: asyncpg.Pool) -> None:
    """One sample of the queue and reconnect gauges; services with nothing read as 0."""
    async with pool.acquire() as conn:
        queue = {r["service"]: r for r in await conn.fetch(_QUEUE_SQL)}
        reconnect = {r["service"]: r["n"] for r in await conn.fetch(_RECONNECT_SQL)}
    for service in SERVICES:
        row = queue.get(service)
        QUEUE_DEPTH.labels(service).set(row["depth"] if row else 0)
        OLDEST_AGE.labels(service).set(float(row["oldest_s"]) if row else 0.0)
        NEEDS_RECONNECT.labels(service).set(reconnect.get(service, 0))


async def sample_forever(pool: asyncpg.Pool, every_s: float = SAMPLE_EVERY_S) -> None:
    while True:
        try:
            await sample(pool)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("queue gauges not sampled: %s", exc)
        await asyncio.sleep(every_s)
