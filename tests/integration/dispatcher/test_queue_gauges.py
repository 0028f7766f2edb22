"""The dispatcher's queue gauges read the shared tables: depth and oldest age of undelivered
work by service, connections needing reconnect, and which services are enabled."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from scrobble_dispatcher.gauges import mark_enabled, sample
from scrobble_shared.db import Conn
from scrobble_shared.db.connect import create_pool

pytestmark = pytest.mark.integration


def gauge(name: str, service: str) -> float:
    value = REGISTRY.get_sample_value(name, {"service": service})
    assert value is not None, f"{name}{{service={service}}} not exported"
    return value


async def add_connection(conn: Conn, service: str, status: str) -> uuid.UUID:
    connection_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO connections (user_id, service, status, status_reason) "
        "VALUES ($1, $2, $3, CASE WHEN $3 = 'active' THEN NULL ELSE 'refresh refused' END) "
        "RETURNING id",
        uuid.uuid4(),
        service,
        status,
    )
    return connection_id


async def add_work(
    conn: Conn, connection_id: uuid.UUID, service: str, status: str, age_s: int
) -> None:
    await conn.execute(
        """
        INSERT INTO scrobbles (connection_id, user_id, service, dedupe_key, kind, content_type,
                               content_id, request, occurred_at, status, next_attempt_at,
                               sent_at, created_at)
        VALUES ($1, gen_random_uuid(), $2, gen_random_uuid()::text, 'scrobble', 'track',
                gen_random_uuid(), '{}', now(), $3,
                CASE WHEN $3 = 'retrying' THEN now() END,
                CASE WHEN $3 = 'sent' THEN now() END,
                now() - make_interval(secs => $4))
        """,
        connection_id,
        service,
        status,
        age_s,
    )


async def test_gauges_follow_the_tables(database_url: str) -> None:
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            lastfm = await add_connection(conn, "lastfm", "active")
            trakt = await add_connection(conn, "trakt", "needs_reconnect")
            await add_work(conn, lastfm, "lastfm", "queued", age_s=30)
            await add_work(conn, lastfm, "lastfm", "retrying", age_s=600)
            await add_work(conn, lastfm, "lastfm", "sent", age_s=9000)
            await add_work(conn, trakt, "trakt", "queued", age_s=5000)
        await sample(pool)
        assert gauge("scrobble_queue_depth", "lastfm") == 2
        assert 600 <= gauge("scrobble_queue_oldest_age_seconds", "lastfm") < 9000
        assert gauge("scrobble_queue_depth", "trakt") == 1
        # Trakt's only connection needs reconnecting: its waiting work has no age alert.
        assert gauge("scrobble_queue_oldest_age_seconds", "trakt") == 0
        assert gauge("scrobble_queue_depth", "simkl") == 0
        assert gauge("scrobble_queue_oldest_age_seconds", "simkl") == 0
        assert gauge("scrobble_connections_needing_reconnect", "trakt") == 1
        assert gauge("scrobble_connections_needing_reconnect", "lastfm") == 0

        async with pool.acquire() as conn:
            await conn.execute("UPDATE scrobbles SET status = 'sent', sent_at = now()")
        await sample(pool)
        assert gauge("scrobble_queue_depth", "lastfm") == 0
    finally:
        await pool.close()


def test_enabled_services_read_one_and_the_rest_zero() -> None:
    mark_enabled(["lastfm", "listenbrainz"])
    assert gauge("scrobble_service_enabled", "lastfm") == 1
    assert gauge("scrobble_service_enabled", "listenbrainz") == 1
    assert gauge("scrobble_service_enabled", "trakt") == 0
    assert gauge("scrobble_service_enabled", "anilist") == 0
