"""Wiring of the dispatcher: the one place that builds pools, clients and the broker.

``scrobble dispatcher`` calls :func:`run`. Services whose app credentials are missing are
disabled with one log line (settings) and get no subscriber.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvloop
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaMessage

from scrobble_dispatcher.consumer import WorkSubscriber, poll_due_work
from scrobble_dispatcher.decide import DeliveryPolicy
from scrobble_dispatcher.delivery import Deliverer
from scrobble_dispatcher.gauges import mark_enabled, sample_forever
from scrobble_dispatcher.imports import wiring as imports
from scrobble_dispatcher.imports.wiring import app_keys
from scrobble_dispatcher.resolve.resolver import IdResolver
from scrobble_dispatcher.token_refresh import refresh_configs
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.runtime import (
    no_decode,
    open_core,
    recover_forever,
    serve_health,
    service_broker,
    supervised,
    tune_gc,
)
from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings
from scrobble_shared.trackers.http import ServiceClient
from scrobble_shared.trackers.ids import ServiceResolver
from scrobble_shared.trackers.recheck import Recheck
from scrobble_shared.trackers.registry import tracker

log = logging.getLogger("scrobble_dispatcher")


def build_clients(settings: Settings, services: list[ServiceName]) -> dict[str, ServiceClient]:
    """Each enabled tracker's client (its ``Tracker.client``)."""
    return {name: tracker(name).client(settings.tracker(name)) for name in services}


def build_rechecks(settings: Settings, services: list[ServiceName]) -> dict[str, Recheck]:
    """The "is it there already?" questions of the trackers that keep repeats twice."""
    found: dict[str, Recheck] = {}
    for name in services:
        make = tracker(name).recheck
        if make is not None:
            found[name] = make(settings.tracker(name))
    return found


def build_resolver(settings: Settings, services: list[ServiceName], pool: Any) -> IdResolver:
    """External-id resolution for the trackers that need it, cached in Postgres."""
    resolvers: dict[str, ServiceResolver] = {}
    for name in services:
        make = tracker(name).resolver
        if make is not None:
            resolvers[name] = make(settings.tracker(name))
    return IdResolver(pool, resolvers, app_keys(settings, services))


def build_app(settings: Settings) -> FastStream:
    settings.require("token_encryption_key")
    assert settings.token_encryption_key is not None
    token_keys = settings.token_encryption_key.get_secret_value()
    services = settings.enabled_services()
    broker = service_broker(settings, "dispatcher")
    state: dict[str, Any] = {}

    for service in services:

        @broker.subscriber(
            settings.service_topic(service),
            group_id=f"{settings.dispatcher_group_id}.{service}",
            batch=True,
            max_records=200,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            decoder=no_decode,
            max_poll_interval_ms=300_000,
        )
        async def on_work(message: KafkaMessage) -> None:
            await state["subscriber"].handle(message)

    # History imports (POST /import/{service}) run here too: same tokens, clients, limits.
    imports.subscribe(broker, settings, state)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            core = await open_core(stack, settings, "scrobble-dispatcher-outbox", pool_max=10)
            pool, relay = core.pool, core.relay
            http = {s: ClientSet(settings.dispatcher_calls_in_flight) for s in services}
            for client in http.values():
                stack.push_async_callback(client.aclose)
            policy = DeliveryPolicy(
                max_retries=settings.max_retries,
                retry_backoff=settings.retry_backoff,
                dead_letter_prefix=settings.scrobble_topic_prefix,
                app_keys=app_keys(settings, services),
            )
            cipher = TokenCipher(token_keys)
            clients = build_clients(settings, services)
            deliverer = Deliverer(
                pool,
                cipher,
                clients,
                http,
                relay,
                policy,
                refresh=refresh_configs(settings, list(services)),
                resolver=build_resolver(settings, list(services), pool),
                rechecks=build_rechecks(settings, list(services)),
            )
            state["subscriber"] = WorkSubscriber(deliverer)

            port = settings.metrics_port_for("dispatcher")
            await serve_health(stack, core, port)
            loops = supervised(stack)
            loops.start("due-work", lambda: poll_due_work(pool, deliverer, list(services)))
            loops.start("outbox-recovery", lambda: recover_forever(relay))
            loops.start("queue-gauges", lambda: sample_forever(pool))
            mark_enabled(services)
            state["imports"] = await imports.start(
                stack, settings, pool, relay, cipher, http, list(services), loops
            )
            log.info("dispatcher: delivering for %s; metrics on :%d", ", ".join(services), port)
            yield

    return FastStream(broker, lifespan=lifespan)


def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code. On uvloop, as the intake and ingest:
    the event loop's own work (sockets to the trackers, Postgres and Kafka; callbacks) is a
    good part of a call's cost on asyncio's pure-Python loop."""
    tune_gc()
    uvloop.run(build_app(settings).run())
    return 0
