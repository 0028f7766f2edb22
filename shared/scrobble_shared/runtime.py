"""What every Kafka-and-Postgres service starts the same way: the pool, the outbox producer
and relay (recovering what a previous run left), and the health/metrics server. Each
service's ``main.py`` stays its one wiring place and calls these from its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker

from scrobble_shared import logs
from scrobble_shared.db.connect import create_pool
from scrobble_shared.health import build_health_app, start_health_server
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.settings import Settings
from scrobble_shared.supervise import Supervisor

log = logging.getLogger(__name__)

# The metrics port is scraped from outside the pod, so it listens on every interface.
ALL_INTERFACES: Final = "0.0.0.0"  # noqa: S104


@dataclass(frozen=True)
class Core:
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    relay: OutboxRelay


async def open_core(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    client_id: str,
    pool_max: int,
    **producer_options: Any,
) -> Core:
    """Pool, idempotent producer and outbox relay, closed by ``stack`` in reverse order."""
    pool = await create_pool(settings.database_url, min_size=2, max_size=pool_max)
    stack.push_async_callback(pool.close)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        client_id=client_id,
        **producer_options,
    )
    await producer.start()
    stack.push_async_callback(producer.stop)
    relay = OutboxRelay(pool, producer, settings.kafka_bootstrap_servers)
    recovered = await relay.recover()
    if recovered:
        log.info("published %d message(s) left by a previous run", recovered)
    return Core(pool, producer, relay)


async def serve_health(stack: contextlib.AsyncExitStack, core: Core, port: int) -> None:
    """``/metrics``, ``/healthz`` and ``/readyz`` (Postgres and Kafka answer) on ``port``."""

    async def db_ready() -> bool:
        return bool(await core.pool.fetchval("SELECT true"))

    async def kafka_ready() -> bool:
        return bool(await core.producer.client.force_metadata_update())

    health = build_health_app({"postgres": db_ready, "kafka": kafka_ready})
    runner = await start_health_server(health, ALL_INTERFACES, port)
    stack.push_async_callback(runner.cleanup)


async def recover_forever(
    relay: OutboxRelay,
    interval_s: float = 30.0,
    on_recovered: Callable[[int], None] | None = None,
) -> None:
    """Until cancelled: publish outbox rows some process left behind (older than a round,
    so rows a live process is about to publish are left to it); ``on_recovered`` hears how
    many a round published. Postgres or Kafka away: logged, the next round tries again."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            published = await relay.recover(older_than=timedelta(seconds=interval_s))
        except (OSError, asyncpg.PostgresError, KafkaError):
            log.exception("outbox recovery failed; trying again next round")
            continue
        if published and on_recovered is not None:
            on_recovered(published)


def supervised(stack: contextlib.AsyncExitStack) -> Supervisor:
    """A supervisor of background loops, stopped when ``stack`` closes."""
    supervisor = Supervisor()
    stack.push_async_callback(supervisor.stop)
    return supervisor


def service_broker(settings: Settings, name: str) -> KafkaBroker:
    """The Kafka broker of the service ``name`` (client id ``scrobble-<name>``, its lines
    logged as ``scrobble_<name>.broker``). FastStream brings its own stderr handler; its
    lines go through ours (JSON, ids)."""
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"scrobble-{name}",
        logger=logging.getLogger(f"scrobble_{name}.broker"),
        log_level=logging.DEBUG,
    )
    logs.adopt("faststream")
    return broker


async def no_decode(_message: Any, _original: Any) -> None:
    """FastStream decoder for handlers that read the raw records themselves: its JSON
    decoding would be wasted work, and would choke on values that must be dead-lettered."""
    return None


def tune_gc() -> None:
    """Called once at start-up, before the loop. A busy service allocates heaps of
    short-lived objects, nearly all freed by reference counting, while the cyclic
    collector at its default pace walks the long-lived ones (modules, pydantic schemas)
    over and over. Those are frozen out of its sight, and young collections run less
    often (every 20,000 net allocations instead of 700)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
