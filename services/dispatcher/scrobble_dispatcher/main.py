"""Wiring of the dispatcher: the one place that builds pools, clients and the broker.

``scrobble dispatcher`` calls :func:`run`. Services whose app credentials are missing are
disabled with one log line (settings) and get no subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage

from scrobble_dispatcher.clients.anilist import AniListClient
from scrobble_dispatcher.clients.base import AppCredentials, ServiceClient
from scrobble_dispatcher.clients.lastfm import LastfmClient
from scrobble_dispatcher.clients.listenbrainz import ListenBrainzClient
from scrobble_dispatcher.clients.simkl import SimklClient
from scrobble_dispatcher.clients.trakt import TraktClient
from scrobble_dispatcher.consumer import WorkSubscriber, poll_due_work
from scrobble_dispatcher.delivery import Deliverer, DeliveryPolicy
from scrobble_dispatcher.gauges import mark_enabled, sample_forever
from scrobble_dispatcher.imports import wiring as imports
from scrobble_dispatcher.recheck import LastfmRecheck, Recheck, SimklRecheck, TraktRecheck
from scrobble_dispatcher.resolve import build as build_resolvers
from scrobble_dispatcher.resolve.resolver import IdResolver
from scrobble_dispatcher.token_refresh import refresh_configs
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared import logs
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.runtime import (
    cancel_tasks,
    no_decode,
    open_core,
    recover_forever,
    serve_health,
    tune_gc,
)
from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings

log = logging.getLogger("scrobble_dispatcher")


def build_clients(settings: Settings, services: list[ServiceName]) -> dict[str, ServiceClient]:
    app = partial(AppCredentials.from_settings, settings)
    makers: dict[str, Any] = {
        "trakt": lambda: TraktClient(settings.trakt_api_url, app("trakt")),
        "simkl": lambda: SimklClient(settings.simkl_api_url, app("simkl")),
        "anilist": lambda: AniListClient(settings.anilist_api_url),
        "lastfm": lambda: LastfmClient(settings.lastfm_api_url, app("lastfm")),
        "listenbrainz": lambda: ListenBrainzClient(settings.listenbrainz_api_url),
    }
    return {service: makers[service]() for service in services}


def build_rechecks(settings: Settings, clients: dict[str, ServiceClient]) -> dict[str, Recheck]:
    """The "is it there already?" questions of the services that keep repeats twice."""
    app = partial(AppCredentials.from_settings, settings)
    found: dict[str, Recheck] = {}
    trakt = clients.get("trakt")
    if isinstance(trakt, TraktClient):
        found["trakt"] = TraktRecheck(trakt)
    if "simkl" in clients:
        found["simkl"] = SimklRecheck(settings.simkl_api_url, app("simkl"))
    if "lastfm" in clients:
        found["lastfm"] = LastfmRecheck(settings.lastfm_api_url, app("lastfm"))
    return found


def build_resolver(settings: Settings, services: list[ServiceName], pool: Any) -> IdResolver:
    """External-id resolution for the services that need it, cached in Postgres."""
    app = partial(AppCredentials.from_settings, settings)
    urls = {
        "trakt": settings.trakt_api_url,
        "simkl": settings.simkl_api_url,
        "anilist": settings.anilist_api_url,
    }
    apps: dict[str, AppCredentials] = {s: app(s) for s in services}
    app_keys: dict[str, str] = {s: settings.service(s).client_id or s for s in services}
    return IdResolver(pool, build_resolvers(list(services), urls, apps), app_keys)


def build_app(settings: Settings) -> FastStream:
    settings.require("token_encryption_key")
    assert settings.token_encryption_key is not None
    token_keys = settings.token_encryption_key.get_secret_value()
    services = settings.enabled_services()
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id="scrobble-dispatcher",
        logger=logging.getLogger("scrobble_dispatcher.broker"),
        log_level=logging.DEBUG,
    )
    # FastStream brings its own stderr handler; its lines go through ours (JSON, ids).
    logs.adopt("faststream")
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
                app_keys={s: settings.service(s).client_id or s for s in services},
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
                rechecks=build_rechecks(settings, clients),
            )
            state["subscriber"] = WorkSubscriber(deliverer)

            port = settings.metrics_port_for("dispatcher")
            await serve_health(stack, core, port)
            tasks = [
                asyncio.create_task(poll_due_work(pool, deliverer, list(services)), name="due"),
                asyncio.create_task(recover_forever(relay), name="outbox-recovery"),
                asyncio.create_task(sample_forever(pool), name="queue-gauges"),
            ]
            mark_enabled(services)
            stack.push_async_callback(cancel_tasks, tasks)
            state["imports"] = await imports.start(
                stack, settings, pool, relay, cipher, http, list(services)
            )
            log.info("dispatcher: delivering for %s; metrics on :%d", ", ".join(services), port)
            yield

    return FastStream(broker, lifespan=lifespan)


def run(settings: Settings) -> int:
    tune_gc()
    asyncio.run(build_app(settings).run())
    return 0
