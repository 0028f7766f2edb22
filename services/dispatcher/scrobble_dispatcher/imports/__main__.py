"""``python -m scrobble_dispatcher.imports``: the import worker alone, without delivery.

The dispatcher runs the same worker; this is for installations that want imports on
machines of their own, and for benchmarks and throughput tests, where
``--no-read-pacing`` spaces history reads by nothing but the services' own answers
(Retry-After, rate-limit headers): against a real service that breaks its limits.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import uvloop
from faststream import FastStream
from faststream.kafka import KafkaBroker

from scrobble_dispatcher.imports import wiring
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.runtime import open_core, serve_health, supervised
from scrobble_shared.settings import Settings, SettingsError, load_settings

log = logging.getLogger("scrobble_dispatcher.imports")


def build_app(settings: Settings, *, read_pacing: bool) -> FastStream:
    settings.require("token_encryption_key")
    assert settings.token_encryption_key is not None
    cipher = TokenCipher(settings.token_encryption_key.get_secret_value())
    services = settings.enabled_services()
    broker = KafkaBroker(settings.kafka_bootstrap_servers, client_id="scrobble-importer")
    state: dict[str, object] = {}
    wiring.subscribe(broker, settings, state)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            core = await open_core(stack, settings, "scrobble-importer-outbox", pool_max=10)
            http = {s: ClientSet(settings.dispatcher_calls_in_flight) for s in services}
            for client in http.values():
                stack.push_async_callback(client.aclose)
            await serve_health(stack, core, settings.metrics_port_for("dispatcher"))
            state["imports"] = await wiring.start(
                stack,
                settings,
                core.pool,
                core.relay,
                cipher,
                http,
                services,
                supervised(stack),
                read_pacing=read_pacing,
            )
            log.info(
                "import worker for %s (read pacing %s)",
                ", ".join(services),
                "on" if read_pacing else "off",
            )
            yield

    return FastStream(broker, lifespan=lifespan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scrobble_dispatcher.imports")
    parser.add_argument(
        "--no-read-pacing",
        action="store_true",
        help="space history reads only as the services' answers say (tests, benchmarks)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
        app = build_app(settings, read_pacing=not args.no_read_pacing)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvloop.run(app.run())  # as the dispatcher
    return 0


if __name__ == "__main__":
    sys.exit(main())
