"""Putting the import worker into a process: its readers, topics and subscriber. The
dispatcher's ``main.py`` calls :func:`subscribe` and :func:`start`; ``__main__`` does the
same for a worker of its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from functools import partial
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage

from scrobble_dispatcher.clients.base import AppCredentials
from scrobble_dispatcher.imports.anilist import AniListReader
from scrobble_dispatcher.imports.core import HistoryReader
from scrobble_dispatcher.imports.lastfm import LastfmReader
from scrobble_dispatcher.imports.listenbrainz import ListenBrainzReader
from scrobble_dispatcher.imports.runner import ImportRunner, ImportTopics
from scrobble_dispatcher.imports.simkl import SimklReader
from scrobble_dispatcher.imports.trakt import TraktReader
from scrobble_dispatcher.imports.worker import ImportWorker, subscriber_options
from scrobble_dispatcher.token_refresh import refresh_configs
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.runtime import cancel_tasks
from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings
from scrobble_shared.work_message import WorkTopics


def imports_topic(settings: Settings) -> str:
    """Import jobs to run, keyed by connection id: ``<prefix>imports``."""
    return f"{settings.scrobble_topic_prefix}imports"


def imported_topic(settings: Settings) -> str:
    """Imported plays and ratings, keyed by user id: ``<prefix>imported``."""
    return f"{settings.scrobble_topic_prefix}imported"


def build_readers(settings: Settings, services: list[ServiceName]) -> dict[str, HistoryReader]:
    app = partial(AppCredentials.from_settings, settings)
    makers: dict[str, Any] = {
        "trakt": lambda: TraktReader(settings.trakt_api_url, app("trakt")),
        "lastfm": lambda: LastfmReader(settings.lastfm_api_url, app("lastfm")),
        "listenbrainz": lambda: ListenBrainzReader(settings.listenbrainz_api_url),
        "simkl": lambda: SimklReader(settings.simkl_api_url, app("simkl")),
        "anilist": lambda: AniListReader(settings.anilist_api_url),
    }
    return {service: makers[service]() for service in services}


def subscribe(broker: KafkaBroker, settings: Settings, state: dict[str, Any]) -> None:
    """The ``<prefix>imports`` subscriber; its worker is set in ``state["imports"]``."""

    @broker.subscriber(  # type: ignore[untyped-decorator]
        imports_topic(settings), **subscriber_options(f"{settings.dispatcher_group_id}.imports")
    )
    async def on_import(message: KafkaMessage) -> None:
        await state["imports"].handle(message)


async def start(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    pool: Any,
    relay: OutboxRelay,
    cipher: TokenCipher,
    http: Mapping[Any, ClientSet],
    services: list[ServiceName],
    *,
    read_pacing: bool = True,
) -> ImportWorker:
    """The worker and its sweeper, stopped (jobs handed back) by ``stack``."""
    runner = ImportRunner(
        pool,
        cipher,
        relay,
        build_readers(settings, services),
        http,
        ImportTopics(
            WorkTopics(settings.playback_dlq_topic, settings.scrobble_topic_prefix),
            imported_topic(settings),
        ),
        {s: settings.service(s).client_id or s for s in services},
        read_pacing=read_pacing,
        refresh=refresh_configs(settings, services),
    )
    worker = ImportWorker(runner)
    sweeper = asyncio.create_task(worker.sweep_forever(), name="import-sweeper")
    stack.push_async_callback(worker.close)
    stack.push_async_callback(cancel_tasks, [sweeper])
    return worker
