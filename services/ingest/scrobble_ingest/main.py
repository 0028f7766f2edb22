"""Wiring of the ingest service: the one place that builds pools, clients and the broker.

``scrobble ingest`` calls :func:`run`. Nothing connects at import time; resources are
created in FastStream's start-up hooks and closed in reverse order on shutdown (SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage

from scrobble_ingest.batch import Topics
from scrobble_ingest.connections_cache import ConnectionCache
from scrobble_ingest.consumer import Ingestor
from scrobble_ingest.sweeper import run_sweeper
from scrobble_shared.db.connect import create_pool
from scrobble_shared.health import build_health_app, start_health_server
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.settings import Settings

log = logging.getLogger("scrobble_ingest")
RECOVERY_INTERVAL_S = 30.0
# The metrics port is scraped from outside the pod, so it listens on every interface.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


async def _no_decode(_message: Any, _original: Any) -> None:
    # The handler reads the raw records itself; FastStream's JSON decoding is wasted work
    # and would choke on the very values we must dead-letter.
    return None


def build_app(settings: Settings) -> FastStream:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id="scrobble-ingest",
        logger=logging.getLogger("scrobble_ingest.broker"),
        log_level=logging.DEBUG,
    )
    state: dict[str, Any] = {}

    @broker.subscriber(
        settings.playback_topic,
        group_id=settings.ingest_group_id,
        batch=True,
        max_records=settings.ingest_batch_size,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        decoder=_no_decode,
        max_poll_interval_ms=300_000,
    )
    async def on_playback_batch(message: KafkaMessage) -> None:
        await state["ingestor"].handle(message)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            pool = await create_pool(settings.database_url, min_size=2, max_size=8)
            stack.push_async_callback(pool.close)
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                # Dead letters carry bad values unchanged, up to what the playback topic took.
                max_request_size=8 * 1024 * 1024,
                client_id="scrobble-ingest-outbox",
            )
            await producer.start()
            stack.push_async_callback(producer.stop)
            relay = OutboxRelay(pool, producer, settings.kafka_bootstrap_servers)
            recovered = await relay.recover()
            if recovered:
                log.info("published %d message(s) left by a previous run", recovered)
            cache = ConnectionCache()
            topics = Topics(settings.playback_dlq_topic, settings.scrobble_topic_prefix)
            silence = settings.scrobble_silence_timeout
            state["ingestor"] = Ingestor(pool, cache, relay, topics, silence)

            async def db_ready() -> bool:
                return bool(await pool.fetchval("SELECT true"))

            async def kafka_ready() -> bool:
                return bool(await producer.client.force_metadata_update())

            health = build_health_app({"postgres": db_ready, "kafka": kafka_ready})
            port = settings.metrics_port_for("ingest")
            runner = await start_health_server(health, ALL_INTERFACES, port)
            stack.push_async_callback(runner.cleanup)
            tasks = [
                asyncio.create_task(cache.listen(settings.database_url), name="listen"),
                asyncio.create_task(
                    run_sweeper(pool, cache, relay, topics, silence, sweep_interval_s(silence)),
                    name="sweeper",
                ),
                asyncio.create_task(_recover_forever(relay), name="outbox-recovery"),
            ]
            stack.push_async_callback(_cancel, tasks)
            log.info(
                "ingest: consuming %s as group %s; metrics on :%d",
                settings.playback_topic,
                settings.ingest_group_id,
                settings.metrics_port_for("ingest"),
            )
            yield

    return FastStream(broker, lifespan=lifespan)


def sweep_interval_s(silence: timedelta) -> float:
    """Look for silent plays a few times per silence timeout, at most once a minute."""
    return min(60.0, max(1.0, silence.total_seconds() / 4))


async def _recover_forever(relay: OutboxRelay) -> None:
    while True:
        await asyncio.sleep(RECOVERY_INTERVAL_S)
        try:
            await relay.recover(older_than=timedelta(seconds=RECOVERY_INTERVAL_S))
        except Exception:
            log.exception("outbox recovery failed")


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    asyncio.run(build_app(settings).run())
    return 0
