"""Wiring of the ingest service: the one place that builds pools, clients and the broker.

``scrobble ingest`` calls :func:`run`. Nothing connects at import time; resources are
created in FastStream's start-up hooks and closed in reverse order on shutdown (SIGTERM).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import uvloop
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaMessage

from scrobble_ingest import metrics
from scrobble_ingest.connections_cache import ConnectionCache
from scrobble_ingest.consumer import Ingestor
from scrobble_ingest.sweeper import run_sweeper
from scrobble_shared.partitioning import keyed_partitioner
from scrobble_shared.runtime import (
    no_decode,
    open_core,
    recover_forever,
    serve_health,
    service_broker,
    supervised,
    tune_gc,
)
from scrobble_shared.settings import Settings
from scrobble_shared.work_message import WorkTopics

log = logging.getLogger("scrobble_ingest")


def build_app(settings: Settings) -> FastStream:
    broker = service_broker(settings, "ingest")
    state: dict[str, Any] = {}

    @broker.subscriber(
        settings.playback_topic,
        group_id=settings.ingest_group_id,
        batch=True,
        max_records=settings.ingest_batch_size,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        decoder=no_decode,
        max_poll_interval_ms=300_000,
    )
    async def on_playback_batch(message: KafkaMessage) -> None:
        await state["ingestor"].handle(message)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            core = await open_core(
                stack,
                settings,
                "scrobble-ingest-outbox",
                pool_max=8,
                linger_ms=5,
                # Dead letters carry bad values unchanged, up to what the playback topic took.
                max_request_size=8 * 1024 * 1024,
                partitioner=keyed_partitioner,
            )
            pool, relay = core.pool, core.relay
            cache = ConnectionCache()
            topics = WorkTopics(settings.playback_dlq_topic, settings.scrobble_topic_prefix)
            silence = settings.scrobble_silence_timeout
            ingestor = state["ingestor"] = Ingestor(pool, cache, relay, topics, silence)
            stack.push_async_callback(ingestor.drain)

            port = settings.metrics_port_for("ingest")
            await serve_health(stack, core, port)
            loops = supervised(stack)
            loops.start("connections-listen", lambda: cache.listen(settings.database_url))
            every = sweep_interval_s(silence)
            loops.start(
                "silence-sweeper",
                lambda: run_sweeper(
                    pool,
                    cache,
                    relay,
                    topics,
                    silence,
                    every,
                    settings.ingest_processed_events_retention,
                ),
            )
            loops.start(
                "outbox-recovery",
                lambda: recover_forever(relay, on_recovered=metrics.OUTBOX_RECOVERED.inc),
            )
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


def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code. On uvloop, as the intake: the
    event loop's own work (socket writes to Kafka and Postgres, callbacks) is a good part
    of a batch's cost on asyncio's pure-Python loop."""
    tune_gc()
    uvloop.run(build_app(settings).run())
    return 0
