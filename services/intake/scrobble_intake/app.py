"""The intake's one wiring place: :func:`create_app` declares the pool, the source
directory (and its LISTEN task), the producer and the publisher in ``cleanup_ctx``, opened
at start-up and closed in reverse, and mounts the webhook and health routes.

Failure policy of the process: Postgres or Kafka unreachable at start-up stops it (the
orchestrator starts it again); away later, requests are answered 503 and ``/readyz``
says which. The LISTEN task reconnects by itself; should it ever end, its error is logged
and the directory reads every source through from Postgres, which stays correct.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import web
from aiokafka import AIOKafkaProducer

from scrobble_intake import handlers
from scrobble_intake.directory import SourceDirectory
from scrobble_intake.keys import DIRECTORY, POOL, PUBLISHER, SETTINGS
from scrobble_intake.publisher import Publisher
from scrobble_shared.db.connect import create_pool
from scrobble_shared.health import health_routes
from scrobble_shared.partitioning import keyed_partitioner
from scrobble_shared.runtime import supervised
from scrobble_shared.settings import Settings

log = logging.getLogger("scrobble_intake")

# Headers and the multipart framing around a body of INTAKE_MAX_BODY.
BODY_SLACK: Final = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def unexpected_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A bug answers a bare 500 and logs where, never the request's path (the secret)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("intake: unhandled %s", type(exc).__name__)
        return handlers.problem(500, "Internal Server Error")


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.intake_max_body + BODY_SLACK, middlewares=[unexpected_errors]
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    handlers.add_routes(app)

    async def postgres_ready() -> bool:
        async with app[POOL].acquire() as conn:
            return bool(await conn.fetchval("SELECT true"))

    async def kafka_ready() -> bool:
        return await app[PUBLISHER].ready()

    app.router.add_routes(health_routes({"postgres": postgres_ready, "kafka": kafka_ready}))
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(settings.database_url, min_size=1, max_size=8)
        stack.push_async_callback(pool.close)
        app[POOL] = pool
        directory = app[DIRECTORY] = SourceDirectory(pool)
        supervised(stack).start("sources-listen", lambda: directory.listen(settings.database_url))
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            client_id="scrobble-intake",
            linger_ms=2,
            partitioner=keyed_partitioner,
        )
        await producer.start()
        stack.push_async_callback(producer.stop)
        app[PUBLISHER] = Publisher(
            producer, settings.playback_topic, settings.intake_publish_timeout
        )
        log.info(
            "intake: publishing to %s; webhooks on %s:%d",
            settings.playback_topic,
            settings.intake_host,
            settings.intake_port,
        )
        yield
