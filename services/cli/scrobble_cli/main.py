"""Argument parsing and dispatch of ``scrobble`` subcommands.

Each subcommand lives in a function that returns an exit code; errors an operator can act
on (bad settings, an unreachable database) are printed to stderr in one line, never as a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from scrobble_cli import commands, keys, sources
from scrobble_shared import logs
from scrobble_shared.crypto import TokenKeyError
from scrobble_shared.db.connect import DatabaseUnavailable
from scrobble_shared.db.migrate import MigrationError
from scrobble_shared.service_names import SERVICES
from scrobble_shared.settings import SettingsError

EXIT_FAILED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scrobble",
        description="revenge-scrobble: media server plays out to Trakt, Simkl, AniList, "
        "Last.fm and ListenBrainz.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = sub.add_parser(
        "migrate", help="apply the database schema; idempotent, safe to run concurrently"
    )
    migrate.add_argument("--database-url", help="Postgres DSN (default: DATABASE_URL)")
    migrate.set_defaults(handler=commands.migrate)

    ingest = sub.add_parser("ingest", help="run the ingest service in the foreground")
    ingest.set_defaults(handler=commands.ingest)
    dispatcher = sub.add_parser("dispatcher", help="run the dispatcher service in the foreground")
    dispatcher.set_defaults(handler=commands.dispatcher)
    gateway = sub.add_parser("gateway", help="run the oauth-gateway (HTTP API) in the foreground")
    gateway.set_defaults(handler=commands.gateway)
    intake = sub.add_parser(
        "intake", help="run the intake (media-server webhooks in) in the foreground"
    )
    intake.set_defaults(handler=commands.intake)

    sandbox = sub.add_parser("sandbox", help="run fakes of the five services on loopback")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=8900, help="port to listen on (0: any)")
    sandbox.set_defaults(handler=commands.sandbox)

    publish = sub.add_parser(
        "publish", help="publish playback events (JSON lines) to the playback topic"
    )
    publish.add_argument("file", nargs="?", default="-", help="JSON lines file, or - for stdin")
    publish.add_argument("--topic", help="topic (default: PLAYBACK_TOPIC, playback.events)")
    publish.add_argument(
        "--no-validate",
        action="store_true",
        help="send lines as they are, even ones that fail the schema",
    )
    publish.set_defaults(handler=commands.publish)

    connection = sub.add_parser("connection", help="manage connections directly")
    connection_sub = connection.add_subparsers(dest="connection_command", required=True)
    add = connection_sub.add_parser("add", help="create a connection; prints its id")
    add.add_argument("--user", required=True, help="user id (uuid)")
    add.add_argument("--service", required=True, choices=SERVICES)
    add.add_argument("--token", help="access token, session key or user token")
    add.add_argument("--refresh-token", help="refresh token (Trakt)")
    add.add_argument("--threshold", type=int, default=80, help="watched threshold percent")
    add.add_argument("--sync-ratings", action="store_true")
    add.add_argument("--sync-watch-status", action="store_true")
    add.set_defaults(handler=commands.connection_add)

    login_link = sub.add_parser(
        "login-link",
        help="print a one-time sign-in link to the gateway's page (one use, 15 minutes)",
        description="Prints a link to GATEWAY_PUBLIC_URL/sign-in that signs the user in once, "
        "within 15 minutes. Anyone holding it can use it: hand it over privately.",
    )
    login_link.add_argument("--user", required=True, help="user id (uuid)")
    login_link.add_argument("--admin", action="store_true", help="sign in with the admin role")
    login_link.set_defaults(handler=commands.login_link)

    sources.add_parser(sub)
    keys.add_parser(sub)

    import_ = sub.add_parser("import", help="history import jobs")
    import_sub = import_.add_subparsers(dest="import_command", required=True)
    cancel = import_sub.add_parser(
        "cancel", help="stop a queued or running import; what it imported stays"
    )
    cancel.add_argument("job", help="import job id (uuid)")
    cancel.set_defaults(handler=commands.import_cancel)

    dlq = sub.add_parser("dlq", help="list or replay dead-lettered scrobbles")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", help="list dead scrobbles")
    dlq_list.add_argument("--service", choices=SERVICES)
    dlq_list.set_defaults(handler=commands.dlq_list)
    replay = dlq_sub.add_parser("replay", help="requeue dead scrobbles")
    replay.add_argument("--service", choices=SERVICES)
    replay.add_argument("--id", help="one scrobble id")
    replay.set_defaults(handler=commands.dlq_replay)

    up = sub.add_parser(
        "up",
        help="quick start: Kafka, Postgres, schema, sandbox, the four services and a demo",
        description="Uses KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when both are set, else "
        "starts local ones. Talks to the real services when their credentials are set, "
        "else starts the sandbox and delivers a demo set of plays to it.",
    )
    state_help = "where pid files, logs and generated keys live (default .local/quickstart)"
    up.add_argument("--state-dir", help=state_help)
    up.add_argument("--gateway-port", type=int, default=8080)
    up.add_argument("--ingest-metrics-port", type=int, default=9101)
    up.add_argument("--dispatcher-metrics-port", type=int, default=9102)
    up.add_argument("--sandbox-port", type=int, default=8090)
    up.add_argument("--intake-port", type=int, default=8081)
    up.set_defaults(handler=commands.up)
    down = sub.add_parser("down", help="stop what `scrobble up` started")
    down.add_argument("--state-dir", help=state_help)
    down.set_defaults(handler=commands.down)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(logging.DEBUG if args.verbose else logging.INFO)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (SettingsError, TokenKeyError) as exc:
        print(f"scrobble: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (
        DatabaseUnavailable,
        MigrationError,
        commands.CommandError,
        sources.SourceCommandError,
    ) as exc:
        print(f"scrobble: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
