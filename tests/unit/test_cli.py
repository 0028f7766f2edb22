"""The ``scrobble`` console script as an operator meets it: help, errors, exit codes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
SUBCOMMANDS = [
    "migrate",
    "ingest",
    "dispatcher",
    "gateway",
    "sandbox",
    "publish",
    "connection",
    "dlq",
    "login-link",
    "up",
    "down",
]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCROBBLE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_help_lists_every_subcommand() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert f"    {name} " in result.stdout, name


@pytest.mark.parametrize(
    "args",
    [[name] for name in SUBCOMMANDS] + [["connection", "add"], ["dlq", "list"], ["dlq", "replay"]],
)
def test_every_subcommand_has_help(args: list[str]) -> None:
    result = run(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scrobble " + " ".join(args))


def test_unknown_subcommand_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TOKEN_ENCRYPTION_KEY": ""}, "TOKEN_ENCRYPTION_KEY"),
        (
            {
                "TOKEN_ENCRYPTION_KEY": "x4p7Wq2JcF1lq0w3sJ5mO1yqkQ0m3c3xQ8V1l9v5mZc=",
                "GATEWAY_JWT_SECRET": "",
                "GATEWAY_JWKS_URL": "",
            },
            "GATEWAY_JWT_SECRET",
        ),
    ],
)
def test_gateway_refuses_to_start_without_its_keys(env: dict[str, str], named: str) -> None:
    # Refused before any connection is tried: an unreachable database proves it.
    result = run("gateway", env={**env, "DATABASE_URL": "postgresql://127.0.0.1:1/none"})
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_migrate_against_unreachable_database_fails_fast_naming_the_host(
    kind: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue("silent_server") if kind == "silent" else free_port()
    dsn = f"postgresql://scrobble:hunter2@127.0.0.1:{port}/scrobble"
    started = time.monotonic()
    result = run("migrate", env={"DATABASE_URL": dsn}, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert f"127.0.0.1:{port}" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_bad_setting_stops_with_the_setting_named() -> None:
    result = run("migrate", env={"DATABASE_URL": "mysql://nope"})
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_login_link_needs_a_user_id() -> None:
    result = run("login-link", "--user", "alice")
    assert result.returncode == 1
    assert "--user must be a uuid, got 'alice'" in result.stderr
    assert result.stdout == ""


def test_connection_add_needs_an_encryption_key() -> None:
    user = "5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11"
    result = run(
        "connection",
        "add",
        "--user",
        user,
        "--service",
        "trakt",
        env={"TOKEN_ENCRYPTION_KEY": ""},
    )
    assert result.returncode == 2
    assert "TOKEN_ENCRYPTION_KEY must be set" in result.stderr


def test_publish_refuses_invalid_lines_before_sending(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "nope"}\nnot json\n')
    # An unreachable broker proves nothing was attempted: validation fails first.
    result = run("publish", str(events), env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 1
    assert "2 of 2 line(s) are not valid playback events" in result.stderr
    assert "line 1:" in result.stderr
    assert "line 2:" in result.stderr
