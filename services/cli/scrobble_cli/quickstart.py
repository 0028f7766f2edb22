"""``scrobble up`` / ``scrobble down``: the whole system on one machine in one command.

``up`` starts (or reuses) local Kafka and Postgres, applies the schema, starts the sandbox
unless real service credentials are in the environment, starts the four services as
background processes (logs and pid files in the state directory), makes a webhook source of
each kind for a demo user connected to every fake, sends a small demo set of playback
events through the intake, waits until the demo work is delivered and prints where to
look, the webhook URLs among it. ``down`` stops what ``up`` started, in reverse.

Failure policy: a step that fails stops ``up`` with a message naming the step and the log
to read; what was already started keeps running until ``scrobble down``, which is safe to
run at any point (it stops whatever pid files it finds and ignores ones already gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import jwt
from cryptography.fernet import Fernet

from scrobble_cli.demo_sources import (
    DemoSourceError,
    describe_sources,
    ensure_demo_sources,
    send_demo_events,
)
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import connect
from scrobble_shared.db.connections import ConnectionExists, NewConnection, create_connection
from scrobble_shared.db.login_links import create_login_link

DEMO_USER: Final = uuid.UUID("d3e0c0de-0000-4000-8000-000000000001")
# The iss and aud of the quick start's tokens (the gateway accepts only those).
DEMO_ISSUER_AND_AUDIENCE: Final = "revenge-scrobble-quickstart"
SERVICES: Final = ("trakt", "lastfm", "listenbrainz", "simkl", "anilist")
# Any of these in the environment means "talk to the real services": no sandbox, no demo
# connections (the demo user has no accounts there).
REAL_CREDENTIALS: Final = (
    "TRAKT_CLIENT_ID",
    "LASTFM_API_KEY",
    "SIMKL_CLIENT_ID",
    "ANILIST_CLIENT_ID",
    "LISTENBRAINZ_TOKEN",
)
# Start order; ``down`` stops in reverse.
PROCESSES: Final = ("sandbox", "ingest", "dispatcher", "intake", "gateway")
DEMO_MAL_ID, DEMO_ANILIST_ID = 52991, 154587


class QuickstartError(Exception):
    """A quick-start step failed; the message names the step and where to look."""


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    ingest_metrics: int = 9101
    dispatcher_metrics: int = 9102
    sandbox: int = 8090
    intake: int = 8081


@dataclass(frozen=True)
class StateDir:
    """Where ``up`` keeps pid files, logs and the generated settings for ``down``."""

    root: Path

    def pid(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    @property
    def env_file(self) -> Path:
        return self.root / "quickstart.env"

    @property
    def external_infra(self) -> Path:
        return self.root / "infra.external"

    @property
    def demo_token(self) -> Path:
        return self.root / "demo-user.jwt"

    @property
    def webhooks(self) -> Path:
        return self.root / "webhooks.txt"


# --- processes -------------------------------------------------------------------------


def scrobble_executable() -> str:
    beside = Path(sys.executable).with_name("scrobble")
    return str(beside) if beside.exists() else "scrobble"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); its state letter in /proc says it is gone.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


def running_pid(state: StateDir, name: str) -> int | None:
    try:
        pid = int(state.pid(name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def start_detached(
    state: StateDir,
    name: str,
    argv: list[str],
    env: Mapping[str, str],
    stdout_to: Path | None = None,
) -> int:
    """Start ``argv`` in its own session (it outlives this command), logging to a file;
    its standard output goes to ``stdout_to`` when given, else to the log too."""
    state.log(name).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        log = files.enter_context(state.log(name).open("ab"))
        out = files.enter_context(stdout_to.open("wb")) if stdout_to else log
        proc = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            argv,
            env=dict(env),
            stdout=out,
            stderr=log if stdout_to else subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state.pid(name).write_text(f"{proc.pid}\n")
    return proc.pid


def stop(state: StateDir, name: str, grace_s: float = 20.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace_s``; True when something was running."""
    pid = running_pid(state, name)
    state.pid(name).unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    until = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < until:
        time.sleep(0.1)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    what: str, check: Callable[[], bool], timeout_s: float, log: Path | None = None
) -> None:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if check():
            return
        time.sleep(0.2)
    hint = f"; see {log}" if log else ""
    raise QuickstartError(f"{what} did not happen within {timeout_s:.0f} s{hint}")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def read_exports(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return found
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value.strip("'\"")
    return found


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"export {k}={v}\n" for k, v in values.items())


# --- the stack -------------------------------------------------------------------------


def uses_real_services(env: Mapping[str, str]) -> bool:
    return any(env.get(name) for name in REAL_CREDENTIALS)


def generated_secrets(state: StateDir, env: Mapping[str, str]) -> dict[str, str]:
    """Keys the services refuse to start without, and the issuer and audience of the demo
    token; made once and kept for the next ``up`` (a new encryption key would make the
    stored tokens unreadable)."""
    kept = read_exports(state.env_file)
    makers: dict[str, Callable[[], str]] = {
        "TOKEN_ENCRYPTION_KEY": lambda: Fernet.generate_key().decode(),
        "GATEWAY_JWT_SECRET": lambda: secrets.token_urlsafe(48),
        "GATEWAY_JWT_ISSUER": lambda: DEMO_ISSUER_AND_AUDIENCE,
        "GATEWAY_JWT_AUDIENCE": lambda: DEMO_ISSUER_AND_AUDIENCE,
    }
    return {name: env.get(name) or kept.get(name) or new() for name, new in makers.items()}


def start_sandbox(state: StateDir, ports: Ports, env: Mapping[str, str]) -> dict[str, str]:
    exports_file = state.root / "sandbox.env"
    if running_pid(state, "sandbox") is None:
        exports_file.unlink(missing_ok=True)
        argv = [scrobble_executable(), "sandbox", "--port", str(ports.sandbox)]
        start_detached(state, "sandbox", argv, env, stdout_to=exports_file)
    wait_until(
        "the sandbox printing its settings",
        lambda: "SANDBOX_TOKEN" in read_exports(exports_file),
        30,
        state.log("sandbox"),
    )
    return read_exports(exports_file)


def start_service(
    state: StateDir, name: str, env: Mapping[str, str], ready_url: str, timeout_s: float = 60
) -> None:
    if running_pid(state, name) is None:
        start_detached(state, name, [scrobble_executable(), name], env)

    def ready() -> bool:
        if running_pid(state, name) is None:
            raise QuickstartError(f"{name} exited during start-up; see {state.log(name)}")
        return http_ok(ready_url)

    wait_until(f"{name} becoming ready", ready, timeout_s, state.log(name))


def intake_public_url(base: Mapping[str, str], ports: Ports) -> str:
    return base.get("INTAKE_PUBLIC_URL") or f"http://127.0.0.1:{ports.intake}"


def service_env(base: Mapping[str, str], ports: Ports) -> dict[str, dict[str, str]]:
    intake_url = intake_public_url(base, ports)
    gateway = {
        **base,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(ports.gateway),
        "GATEWAY_PUBLIC_URL": base.get("GATEWAY_PUBLIC_URL") or f"http://127.0.0.1:{ports.gateway}",
        "INTAKE_PUBLIC_URL": intake_url,
    }
    intake = {
        **base,
        # Loopback unless asked: a media server on another machine needs INTAKE_HOST=0.0.0.0
        # and INTAKE_PUBLIC_URL with this machine's address.
        "INTAKE_HOST": base.get("INTAKE_HOST") or "127.0.0.1",
        "INTAKE_PORT": str(ports.intake),
        "INTAKE_PUBLIC_URL": intake_url,
    }
    return {
        "ingest": {**base, "METRICS_PORT": str(ports.ingest_metrics)},
        "dispatcher": {**base, "METRICS_PORT": str(ports.dispatcher_metrics)},
        "intake": intake,
        "gateway": gateway,
    }


# --- the demo --------------------------------------------------------------------------


def _event(action: str, at: datetime, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": str(DEMO_USER),
        "action": action,
        "occurred_at": at.isoformat(),
        "content": content,
        "session_id": "quickstart",
        **extra,
    }


def demo_events(now: datetime) -> list[dict[str, Any]]:
    """A film watched to the end, an episode, an anime episode and a track listened to:
    something for each of the five services."""
    movie: dict[str, Any] = {
        "type": "movie",
        "id": str(uuid.uuid5(DEMO_USER, "movie")),
        "title": "Heat",
        "year": 1995,
        "duration_ms": 10_200_000,
        "external_ids": {"imdb": "tt0113277", "tmdb": 949},
    }
    episode: dict[str, Any] = {
        "type": "episode",
        "id": str(uuid.uuid5(DEMO_USER, "episode")),
        "title": "Good News About Hell",
        "duration_ms": 3_420_000,
        "season": 1,
        "number": 1,
        "show": {"title": "Severance", "year": 2022, "external_ids": {"tvdb": 371980}},
    }
    anime: dict[str, Any] = {
        "type": "anime_episode",
        "id": str(uuid.uuid5(DEMO_USER, "anime")),
        "title": "The Journey's End",
        "duration_ms": 1_440_000,
        "number": 1,
        "show": {"title": "Frieren", "external_ids": {"mal": DEMO_MAL_ID}},
    }
    track: dict[str, Any] = {
        "type": "track",
        "id": str(uuid.uuid5(DEMO_USER, "track")),
        "title": "Windowlicker",
        "duration_ms": 367_000,
        "artists": ["Aphex Twin"],
        "album": "Windowlicker",
    }
    start = now - timedelta(minutes=5)
    events = []
    for offset, content in enumerate((movie, episode, anime, track)):
        at = start + timedelta(seconds=offset)
        duration = int(content["duration_ms"])
        events.append(_event("start", at, content, position_ms=0))
        events.append(
            _event("stop", at + timedelta(seconds=30), content, position_ms=duration * 95 // 100)
        )
    return events


async def connect_demo_user(database_url: str, token_keys: str, sandbox_token: str) -> int:
    """One connection per service for the demo user; returns how many were new."""
    cipher = TokenCipher(token_keys)
    conn = await connect(database_url)
    made = 0
    try:
        for service in SERVICES:
            new = NewConnection(
                user_id=DEMO_USER,
                service=service,
                access_token=sandbox_token,
                sync_ratings=True,
                sync_watch_status=True,
            )
            try:
                await create_connection(conn, cipher, new)
                made += 1
            except ConnectionExists:
                pass
    finally:
        await conn.close()
    return made


async def demo_outcome(database_url: str, since: datetime) -> dict[tuple[str, str], int]:
    """(service, status) -> count of the demo user's work queued since ``since``."""
    conn: asyncpg.Connection = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            # Now playing is best effort and skipped when the play already ended (as in
            # the demo, published all at once): the summary is about what was recorded.
            "SELECT service, status, count(*) AS n FROM scrobbles "
            "WHERE user_id = $1 AND created_at >= $2 AND kind <> 'now_playing' "
            "GROUP BY service, status",
            DEMO_USER,
            since,
        )
    finally:
        await conn.close()
    return {(r["service"], r["status"]): r["n"] for r in rows}


def settled(outcome: Mapping[tuple[str, str], int], services: int) -> bool:
    """Every service has work and none of it is still on its way."""
    waiting = {"queued", "sending", "retrying"}
    have = {service for service, _ in outcome}
    return len(have) >= services and not any(s in waiting for _, s in outcome)


def demo_jwt(secret: str, issuer: str, audience: str, hours: int = 24) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(DEMO_USER),
        "iss": issuer,
        "aud": audience,
        "roles": ["admin"],
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=hours)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


async def demo_sign_in_link(database_url: str, public_url: str) -> str:
    """A one-time link that signs the demo user (admin) in to the gateway's page."""
    conn = await connect(database_url)
    try:
        link = await create_login_link(conn, DEMO_USER, admin=True, public_url=public_url)
    finally:
        await conn.close()
    return link.url


def sandbox_calls(sandbox_url: str) -> dict[str, int]:
    """Calls each fake received, from its request log."""
    counts: dict[str, int] = {}
    for fake in SERVICES:
        try:
            answer = httpx.get(f"{sandbox_url}/_sandbox/{fake}/requests", timeout=5)
            body = answer.json()
        except (httpx.HTTPError, ValueError):
            continue
        items = body.get("requests", body) if isinstance(body, dict) else body
        counts[fake] = len(items) if isinstance(items, list) else 0
    return counts


# --- up / down -------------------------------------------------------------------------


def seed_sandbox(sandbox_url: str) -> None:
    """The demo's anime is known to the AniList fake by its MAL id, as on AniList."""
    media = [{"id": DEMO_ANILIST_ID, "idMal": DEMO_MAL_ID, "title": "Sousou no Frieren"}]
    answer = httpx.post(
        f"{sandbox_url}/_sandbox/anilist/seed", json={"kind": "media", "items": media}, timeout=5
    )
    if answer.status_code != 200:
        raise QuickstartError(f"seeding the AniList fake failed: {answer.status_code}")


@dataclass(frozen=True)
class UpReport:
    seconds: float
    outcome: dict[tuple[str, str], int]
    sandbox_calls: dict[str, int]
    real_services: bool
    # kind -> webhook URL of the demo user's sources (none with real services)
    webhooks: dict[str, str]
    # Signs the demo user in to the page, once, within 15 minutes.
    sign_in_link: str = ""


def bring_up(
    state: StateDir,
    ports: Ports,
    infra_env: Mapping[str, str],
    external_infra: bool,
    out: Callable[[str], None] = print,
    deliver_timeout_s: float = 180,
) -> UpReport:
    """Everything ``scrobble up`` does after the infrastructure and schema are there."""
    started = time.monotonic()
    # Our own readiness polls and sandbox calls are not news to the person reading this.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    state.root.mkdir(parents=True, exist_ok=True)
    if external_infra:
        state.external_infra.write_text("KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL were given\n")
    else:
        state.external_infra.unlink(missing_ok=True)
    base = {**os.environ, **infra_env}
    made = generated_secrets(state, base)
    write_env_file(state.env_file, made)
    base.update(made)
    real = uses_real_services(base)
    sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
    if not real:
        out(f"sandbox:    starting the fakes on {sandbox_url}")
        base.update(start_sandbox(state, ports, base))
        seed_sandbox(sandbox_url)
    else:
        out("sandbox:    not started: real service credentials are set")
    envs = service_env(base, ports)
    metrics = {
        "ingest": f"http://127.0.0.1:{ports.ingest_metrics}",
        "dispatcher": f"http://127.0.0.1:{ports.dispatcher_metrics}",
        "intake": f"http://127.0.0.1:{ports.intake}",
        "gateway": f"http://127.0.0.1:{ports.gateway}",
    }
    for name in ("ingest", "dispatcher", "intake", "gateway"):
        out(f"{name + ':':<11} starting (log {state.log(name)})")
        start_service(state, name, envs[name], f"{metrics[name]}/readyz")
    demo_token = demo_jwt(
        base["GATEWAY_JWT_SECRET"], base["GATEWAY_JWT_ISSUER"], base["GATEWAY_JWT_AUDIENCE"]
    )
    state.demo_token.write_text(demo_token + "\n")
    state.demo_token.chmod(0o600)
    sign_in_link = asyncio.run(
        demo_sign_in_link(base["DATABASE_URL"], envs["gateway"]["GATEWAY_PUBLIC_URL"])
    )

    outcome: dict[tuple[str, str], int] = {}
    calls: dict[str, int] = {}
    webhooks: dict[str, str] = {}
    if not real:
        since = datetime.now(UTC) - timedelta(seconds=5)
        asyncio.run(
            connect_demo_user(
                base["DATABASE_URL"], made["TOKEN_ENCRYPTION_KEY"], base["SANDBOX_TOKEN"]
            )
        )
        webhooks = asyncio.run(
            ensure_demo_sources(
                base["DATABASE_URL"], DEMO_USER, intake_public_url(base, ports), state.webhooks
            )
        )
        events = demo_events(datetime.now(UTC))
        try:
            send_demo_events(webhooks["events"], events)
        except DemoSourceError as exc:
            raise QuickstartError(f"sending the demo events failed: {exc}") from None
        out(f"demo:       sent {len(events)} playback events for user {DEMO_USER} to the intake")

        def delivered() -> bool:
            latest = asyncio.run(demo_outcome(base["DATABASE_URL"], since))
            outcome.clear()
            outcome.update(latest)
            return settled(outcome, len(SERVICES))

        wait_until(
            "delivery of the demo events", delivered, deliver_timeout_s, state.log("dispatcher")
        )
        calls = sandbox_calls(sandbox_url)
    return UpReport(time.monotonic() - started, outcome, calls, real, webhooks, sign_in_link)


def describe(report: UpReport, state: StateDir, ports: Ports) -> list[str]:
    gateway = f"http://127.0.0.1:{ports.gateway}"
    lines = []
    if not report.real_services:
        lines.append(f"delivered in {report.seconds:.1f} s:")
        for service in SERVICES:
            statuses = {s: n for (svc, s), n in sorted(report.outcome.items()) if svc == service}
            summary = ", ".join(f"{n} {s}" for s, n in statuses.items()) or "nothing"
            lines.append(
                f"  {service:<13} {summary:<24} "
                f"({report.sandbox_calls.get(service, 0)} call(s) at the fake)"
            )
    lines += [
        "",
        f"page:       {report.sign_in_link}",
        "            signs the demo user (admin) in to the page, once, within 15 minutes; for "
        "another link:",
        f"            GATEWAY_PUBLIC_URL={gateway} scrobble login-link --user {DEMO_USER} --admin",
        f"gateway:    {gateway}/api/v1/scrobble   (OpenAPI: {gateway}/api/v1/openapi.json)",
        f"            a bearer token for the demo user (admin) is in {state.demo_token}:",
        f'            curl -H "Authorization: Bearer $(cat {state.demo_token})" '
        f"{gateway}/api/v1/scrobble/history",
        f"metrics:    ingest http://127.0.0.1:{ports.ingest_metrics}/metrics, "
        f"dispatcher http://127.0.0.1:{ports.dispatcher_metrics}/metrics, "
        f"intake http://127.0.0.1:{ports.intake}/metrics, gateway {gateway}/metrics",
    ]
    if report.webhooks:
        lines += describe_sources(report.webhooks, state.webhooks)
    else:
        lines.append(
            "webhooks:   scrobble source add --kind jellyfin|plex|emby --name N --owner USER "
            "prints a media server's URL"
        )
    if not report.real_services:
        lines.append(f"sandbox:    http://127.0.0.1:{ports.sandbox}/_sandbox/env")
    lines += [
        f"logs:       {state.root / 'logs'}",
        f"settings:   {state.env_file} (generated keys; keep it to read stored tokens later)",
        "stop:       scrobble down   (make down)",
    ]
    return lines


def bring_down(state: StateDir, out: Callable[[str], None] = print) -> bool:
    """Stops the processes ``up`` started; True when the infrastructure should go too."""
    for name in reversed(PROCESSES):
        if stop(state, name):
            out(f"stopped {name}")
    return not state.external_infra.exists()
