"""What each ``scrobble`` subcommand does: thin wrappers over the shared core and scripts."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from uuid import UUID

import httpx

from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import connect, describe_target
from scrobble_shared.db.connections import ConnectionExists, NewConnection, create_connection
from scrobble_shared.db.login_links import LoginLink, create_login_link
from scrobble_shared.db.migrate import apply_migrations
from scrobble_shared.settings import Settings, load_settings
from scrobble_shared.trackers.connect import ExchangeFailed, InvalidUserToken, UserToken
from scrobble_shared.trackers.registry import tracker
from scrobble_shared.user_tokens import check_user_token

if TYPE_CHECKING:
    from scrobble_cli.quickstart import StateDir


class CommandError(Exception):
    """A subcommand failed for a reason the operator can act on; the message says which."""


def repo_root() -> Path:
    """The checkout this package runs from (the scripts in deploy/ live there)."""
    return Path(__file__).resolve().parents[3]


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


# --- migrate -------------------------------------------------------------------------


async def _migrate(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        applied = await apply_migrations(conn)
    finally:
        await conn.close()
    return [f"{m.version:04d}_{m.name}" for m in applied]


def migrate(args: argparse.Namespace) -> int:
    settings = _settings(database_url=args.database_url)
    applied = asyncio.run(_migrate(settings.database_url))
    target = describe_target(settings.database_url)
    if applied:
        print(f"applied {len(applied)} migration(s) to {target}: {', '.join(applied)}")
    else:
        print(f"schema of {target} is up to date")
    return 0


# --- services ------------------------------------------------------------------------


def ingest(_: argparse.Namespace) -> int:
    from scrobble_ingest.main import run

    return run(_settings())


def dispatcher(_: argparse.Namespace) -> int:
    from scrobble_dispatcher.main import run

    return run(_settings())


def _serve(name: str, run: Callable[[Settings], int], settings: Settings, where: str) -> int:
    """Run an HTTP service until it stops; an unreachable Kafka or a port it cannot listen
    on (``where``) is a one-line error, not a traceback."""
    from aiokafka.errors import KafkaConnectionError

    try:
        return run(settings)
    except KafkaConnectionError:
        raise CommandError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}") from None
    except OSError as exc:
        raise CommandError(f"{name} cannot listen on {where}: {exc.strerror}") from None


def gateway(_: argparse.Namespace) -> int:
    from scrobble_gateway.main import run

    settings = _settings()
    return _serve("gateway", run, settings, f"{settings.gateway_host}:{settings.gateway_port}")


def intake(_: argparse.Namespace) -> int:
    from scrobble_intake.main import run

    settings = _settings()
    return _serve("intake", run, settings, f"{settings.intake_host}:{settings.intake_port}")


# --- dlq -----------------------------------------------------------------------------


async def _dlq_list(dsn: str, service: str | None) -> list[str]:
    from scrobble_shared.db.dead_letters import list_dead

    conn = await connect(dsn)
    try:
        dead = await list_dead(conn, service)
    finally:
        await conn.close()
    return [
        f"{d.id}  {d.service:<12} {d.kind:<11} attempts={d.attempts}  "
        f"{d.updated_at:%Y-%m-%d %H:%M:%S}  {d.last_error}"
        for d in dead
    ]


def dlq_list(args: argparse.Namespace) -> int:
    lines = asyncio.run(_dlq_list(_settings().database_url, args.service))
    print("\n".join(lines) if lines else "no dead scrobbles")
    return 0


async def _dlq_replay(dsn: str, service: str | None, scrobble_id: UUID | None) -> int:
    from scrobble_shared.db.dead_letters import replay_dead

    conn = await connect(dsn)
    try:
        return await replay_dead(conn, service, scrobble_id)
    finally:
        await conn.close()


def dlq_replay(args: argparse.Namespace) -> int:
    try:
        scrobble_id = None if args.id is None else UUID(args.id)
    except ValueError:
        raise CommandError(f"--id must be a uuid, got {args.id!r}") from None
    count = asyncio.run(_dlq_replay(_settings().database_url, args.service, scrobble_id))
    print(f"requeued {count} dead scrobble(s); a running dispatcher sends them now")
    return 0


# --- import --------------------------------------------------------------------------


async def _import_cancel(dsn: str, job_id: UUID) -> str:
    from scrobble_shared.db.imports import cancel_import

    conn = await connect(dsn)
    try:
        result = await cancel_import(conn, job_id, None)
        row = await conn.fetchrow(
            "SELECT service, state, pages_done, items_seen, items_added FROM import_jobs "
            "WHERE id = $1",
            job_id,
        )
    finally:
        await conn.close()
    if result == "not_found" or row is None:
        raise CommandError(f"no import job {job_id}")
    if result == "finished":
        raise CommandError(f"import job {job_id} is {row['state']} already")
    counts = (
        f"{row['pages_done']} page(s), {row['items_seen']} item(s) seen, {row['items_added']} added"
    )
    if result == "already_cancelled":
        return f"import job {job_id} ({row['service']}) was cancelled already: {counts}"
    return (
        f"cancelled import job {job_id} ({row['service']}): {counts} kept; "
        "a worker running it stops within seconds"
    )


def import_cancel(args: argparse.Namespace) -> int:
    """Any user's job (the operator's view); the gateway's route is the owner's."""
    try:
        job_id = UUID(args.job)
    except ValueError:
        raise CommandError(f"the job id must be a uuid, got {args.job!r}") from None
    print(asyncio.run(_import_cancel(_settings().database_url, job_id)))
    return 0


# --- sandbox -------------------------------------------------------------------------


def sandbox(args: argparse.Namespace) -> int:
    try:
        from scrobble_sandbox.main import run as run_sandbox

        return run_sandbox(args.host, args.port)
    except OSError as exc:
        raise CommandError(f"sandbox cannot listen on {args.host}:{args.port}: {exc}") from None


# --- publish -------------------------------------------------------------------------


def _read_lines(source: TextIO) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(source, start=1) if line.strip()]


def _key_of(line: str) -> bytes | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    user = value.get("user_id") if isinstance(value, dict) else None
    return user.encode("utf-8") if isinstance(user, str) else None


def _check_lines(lines: list[tuple[int, str]]) -> list[str]:
    from scrobble_shared.events import InvalidEvent, parse_playback_event

    problems = []
    for number, line in lines:
        try:
            parse_playback_event(line.encode("utf-8"))
        except InvalidEvent as exc:
            problems.append(f"line {number}: {exc}")
    return problems


async def _publish(bootstrap: str, topic: str, lines: list[tuple[int, str]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        await asyncio.wait_for(producer.start(), 15)
    except Exception as exc:
        await producer.stop()
        raise CommandError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    try:
        sends = [
            await producer.send(topic, line.encode("utf-8"), key=_key_of(line)) for _, line in lines
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def publish(args: argparse.Namespace) -> int:
    settings = _settings()
    topic = args.topic or settings.playback_topic
    if args.file == "-":
        lines = _read_lines(sys.stdin)
    else:
        try:
            with open(args.file, encoding="utf-8") as source:
                lines = _read_lines(source)
        except OSError as exc:
            raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    if not args.no_validate:
        problems = _check_lines(lines)
        if problems:
            shown = "\n".join(problems[:20])
            raise CommandError(
                f"{len(problems)} of {len(lines)} line(s) are not valid playback events; "
                f"nothing was published (use --no-validate to send them anyway):\n{shown}"
            )
    asyncio.run(_publish(settings.kafka_bootstrap_servers, topic, lines))
    print(f"published {len(lines)} event(s) to {topic}")
    return 0


# --- connection add ------------------------------------------------------------------


async def _add_connection(settings: Settings, new: NewConnection) -> UUID:
    settings.require("token_encryption_key")
    assert settings.token_encryption_key is not None
    cipher = TokenCipher(settings.token_encryption_key.get_secret_value())
    conn = await connect(settings.database_url)
    try:
        created = await create_connection(conn, cipher, new)
    except ConnectionExists as exc:
        raise CommandError(str(exc)) from None
    finally:
        await conn.close()
    return created.id


async def _account_name(
    settings: Settings, service: str, token: str | None, api_url: str | None
) -> str | None:
    """The account a user token belongs to, asked of the tracker as the gateway does when
    a user pastes one (ListenBrainz's history import reads its user name); None for
    trackers whose tokens come from a sign-in flow. A refused token is an error."""
    flow = tracker(service).connect
    if not isinstance(flow, UserToken) or token is None:
        return None
    title = tracker(service).title
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            return await check_user_token(
                http, flow, api_url or settings.tracker(service).api_url, token
            )
    except InvalidUserToken:
        raise CommandError(f"{title} does not accept this token (--token)") from None
    except (httpx.HTTPError, ValueError, ExchangeFailed) as exc:
        reason = exc if isinstance(exc, ExchangeFailed) else type(exc).__name__
        raise CommandError(f"could not check the token with {title}: {reason}") from None


def connection_add(args: argparse.Namespace) -> int:
    try:
        user = UUID(args.user)
    except ValueError:
        raise CommandError(f"--user must be a uuid, got {args.user!r}") from None
    if not 1 <= args.threshold <= 100:
        raise CommandError("--threshold must be between 1 and 100")
    settings = _settings()
    api_url = args.api_url.rstrip("/") if args.api_url else None
    flow = tracker(args.service).connect
    own_server = isinstance(flow, UserToken) and flow.user_api_url
    if own_server and api_url is None:
        raise CommandError(f"--api-url is required: each user runs their own {args.service}")
    if api_url is not None and not own_server:
        raise CommandError(f"--api-url: {args.service} takes no address of the user's own")
    account = asyncio.run(_account_name(settings, args.service, args.token, api_url))
    new = NewConnection(
        user_id=user,
        service=args.service,
        access_token=args.token,
        refresh_token=args.refresh_token,
        scrobble_threshold_percent=args.threshold,
        sync_ratings=args.sync_ratings,
        sync_watch_status=args.sync_watch_status,
        external_user_name=account,
        api_url=api_url,
    )
    print(asyncio.run(_add_connection(settings, new)))
    return 0


# --- login-link ----------------------------------------------------------------------


async def _login_link(settings: Settings, user: UUID, admin: bool) -> LoginLink:
    conn = await connect(settings.database_url)
    try:
        return await create_login_link(
            conn, user, admin=admin, public_url=settings.gateway_public_url
        )
    finally:
        await conn.close()


def login_link(args: argparse.Namespace) -> int:
    try:
        user = UUID(args.user)
    except ValueError:
        raise CommandError(f"--user must be a uuid, got {args.user!r}") from None
    link = asyncio.run(_login_link(_settings(), user, args.admin))
    print(link.url)
    role = " as an admin" if args.admin else ""
    print(
        f"signs in user {user}{role} once, until {link.expires_at:%Y-%m-%d %H:%M:%S %Z}",
        file=sys.stderr,
    )
    return 0


# --- up / down -----------------------------------------------------------------------


def _infra(action: str) -> str:
    script = repo_root() / "deploy" / "local" / "infra.sh"
    if not script.exists():
        raise CommandError(f"{script} not found: run from a checkout of the repository")
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        ["bash", str(script), action],  # noqa: S607 - bash from PATH, like the Makefile
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CommandError(f"deploy/local/infra.sh {action} failed (exit {result.returncode})")
    return result.stdout


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value
    return found


def _quickstart_state(args: argparse.Namespace) -> StateDir:
    from scrobble_cli.quickstart import StateDir

    root = Path(args.state_dir) if args.state_dir else repo_root() / ".local" / "quickstart"
    return StateDir(root.resolve())


def up(args: argparse.Namespace) -> int:
    """Infrastructure (given, or local), schema, sandbox, the three services, the demo."""
    from scrobble_cli import quickstart

    given = {name: os.environ.get(name, "") for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    external = all(given.values())
    if external:
        exports = given
        print("infra:      using KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL from the environment")
    else:
        print("infra:      starting local Kafka and Postgres (deploy/local/infra.sh up)")
        exports = _exports(_infra("up"))
    dsn = exports["DATABASE_URL"]
    applied = asyncio.run(_migrate(dsn))
    print(f"schema:     {describe_target(dsn)} ({len(applied)} migration(s) applied now)")
    ports = quickstart.Ports(
        gateway=args.gateway_port,
        ingest_metrics=args.ingest_metrics_port,
        dispatcher_metrics=args.dispatcher_metrics_port,
        sandbox=args.sandbox_port,
        intake=args.intake_port,
    )
    state = _quickstart_state(args)
    try:
        report = quickstart.bring_up(state, ports, exports, external)
    except quickstart.QuickstartError as exc:
        raise CommandError(f"{exc} (stop what started with `scrobble down`)") from None
    for line in quickstart.describe(report, state, ports):
        print(line)
    return 0


def down(args: argparse.Namespace) -> int:
    from scrobble_cli import quickstart

    if quickstart.bring_down(_quickstart_state(args)):
        _infra("down")
        print("stopped local Kafka and Postgres")
    else:
        print("left Kafka and Postgres running: `scrobble up` did not start them")
    return 0
