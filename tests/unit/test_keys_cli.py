"""``scrobble keys rotate|check`` as an operator meets them without a database: help, and
bad or missing keys refused before anything connects, without echoing a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
# Nothing listens here: a command that got as far as connecting would fail differently.
NOWHERE = "postgresql://nobody@127.0.0.1:9/none"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TOKEN_ENCRYPTION_KEY"}
    return subprocess.run(
        [SCROBBLE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, "DATABASE_URL": NOWHERE, **env},
        check=False,
    )


@pytest.mark.parametrize("args", [["keys"], ["keys", "rotate"], ["keys", "check"]])
def test_keys_commands_have_help(args: list[str]) -> None:
    result = run(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scrobble " + " ".join(args))
    if args == ["keys", "rotate"]:
        assert "--batch-size" in result.stdout
        assert "--busy-wait" in result.stdout


def test_keys_is_listed_in_the_main_help() -> None:
    assert "    keys " in run("--help").stdout


@pytest.mark.parametrize("command", ["rotate", "check"])
def test_without_keys_they_refuse_at_once(command: str) -> None:
    result = run("keys", command)
    assert result.returncode == 2
    assert "TOKEN_ENCRYPTION_KEY" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["rotate", "check"])
def test_a_bad_key_is_named_by_position_not_shown(command: str) -> None:
    good = Fernet.generate_key().decode()
    result = run("keys", command, TOKEN_ENCRYPTION_KEY=f"{good},not-a-key-but-a-secret")
    assert result.returncode == 2
    assert "entry 2 is not a Fernet key" in result.stderr
    assert "not-a-key-but-a-secret" not in result.stderr + result.stdout
    assert good not in result.stderr + result.stdout


def test_rotate_with_a_single_key_says_what_it_does() -> None:
    """One key is a valid rotation (to it); with the database away the error is one line."""
    result = run("keys", "rotate", TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
