"""Putting the import worker into a process: its readers, topics and subscriber. The
dispatcher's ``main.py`` calls :func:`subscribe` and :func:`start`; ``__main__`` does the
same for a worker of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage

from scrobble_dispatcher.imports.runner import ImportRunner, ImportTopics
from scrobble_dispatcher.imports.worker import ImportWorker, subscriber_options
from scrobble_dispatcher.token_refresh import refresh_configs
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings
from scrobble_shared.supervise import Supervisor
from scrobble_shared.trackers.history import HistoryReader
from scrobble_shared.trackers.registry import tracker
from scrobble_shared.work_message import WorkTopics


def imports_topic(settings: Settings) -> str:
    """Import jobs to run, keyed by connection id: ``<prefix>imports``."""
    return f"{settings.scrobble_topic_prefix}imports"


def imported_topic(settings: Settings) -> str:
    """Imported plays and ratings, keyed by user id: ``<prefix>imported``."""
    return f"{settings.scrobble_topic_prefix}imported"


def app_keys(settings: Settings, services: list[ServiceName]) -> dict[str, str]:
    """The app's id at each tracker, which names its app-wide pacing keys (the tracker's
    name when it has no app of ours)."""
    return {name: settings.tracker(name).app.client_id or name for name in services}


def build_readers(settings: Settings, services: list[ServiceName]) -> dict[str, HistoryReader]:
    """Each enabled tracker's history reader (its ``Tracker.reader``)."""
    return {name: tracker(name).reader(settings.tracker(name)) for name in services}


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
    loops: Supervisor,
    *,
    read_pacing: bool = True,
) -> ImportWorker:
    """The worker, stopped (jobs handed back) by ``stack``, and its sweeper among
    ``loops``."""
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
        app_keys(settings, services),
        read_pacing=read_pacing,
        refresh=refresh_configs(settings, services),
    )
    worker = ImportWorker(runner)
    stack.push_async_callback(worker.close)
    loops.start("import-sweeper", worker.sweep_forever)
    return worker
