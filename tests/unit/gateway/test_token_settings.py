"""What the gateway refuses to start with, for checking bearer tokens: JWKS without a
non-empty issuer and audience; HS256 without them set (an empty value means "none", with one
warning); an HS256 secret shorter than 32 bytes. Checked before any I/O; ``scrobble gateway``
says so on one line and exits 2."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from scrobble_gateway.app import create_app
from scrobble_shared.settings import SettingsError, load_settings

SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
SECRET = "a-secret-of-the-unit-tests-0123456789abcdef"
JWKS = "http://127.0.0.1:1/jwks.json"
OURS = {"GATEWAY_JWT_ISSUER": "https://auth.example", "GATEWAY_JWT_AUDIENCE": "scrobble"}


def auth_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "scrobble_gateway.auth"]


def settings(**environ: str) -> Any:
    base = {"TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    return load_settings({**base, **environ})


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"GATEWAY_JWKS_URL": JWKS}, "GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE"),
        (
            {"GATEWAY_JWKS_URL": JWKS, "GATEWAY_JWT_ISSUER": "", "GATEWAY_JWT_AUDIENCE": ""},
            "GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE",
        ),
        (
            {"GATEWAY_JWKS_URL": JWKS, "GATEWAY_JWT_ISSUER": "https://auth.example"},
            "GATEWAY_JWT_AUDIENCE",
        ),
        (
            {"GATEWAY_JWKS_URL": JWKS, "GATEWAY_JWT_SECRET": SECRET, "GATEWAY_JWT_AUDIENCE": ""},
            "GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE",
        ),
        ({"GATEWAY_JWT_SECRET": SECRET}, "GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE"),
        (
            {"GATEWAY_JWT_SECRET": SECRET, "GATEWAY_JWT_AUDIENCE": "scrobble"},
            "GATEWAY_JWT_ISSUER",
        ),
        ({"GATEWAY_JWT_SECRET": "x" * 31, **OURS}, "GATEWAY_JWT_SECRET"),
        ({"GATEWAY_JWT_SECRET": "é" * 15, **OURS}, "GATEWAY_JWT_SECRET"),  # 30 bytes
    ],
)
def test_the_gateway_refuses_to_start(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        create_app(settings(**environ))


def test_what_it_starts_with(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    create_app(settings(GATEWAY_JWKS_URL=JWKS, **OURS))
    create_app(settings(GATEWAY_JWT_SECRET="x" * 32, **OURS))
    create_app(settings(GATEWAY_JWT_SECRET=SECRET, GATEWAY_JWKS_URL=JWKS, **OURS))
    assert auth_warnings(caplog) == []


def test_an_empty_issuer_and_audience_with_hs256_mean_none_and_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    create_app(settings(GATEWAY_JWT_SECRET=SECRET, GATEWAY_JWT_ISSUER="", GATEWAY_JWT_AUDIENCE=""))
    [warning] = auth_warnings(caplog)
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "GATEWAY_JWT_ISSUER" in message
    assert "GATEWAY_JWT_AUDIENCE" in message
    assert SECRET not in message
    caplog.clear()
    create_app(settings(GATEWAY_JWT_SECRET=SECRET, GATEWAY_JWT_ISSUER="", GATEWAY_JWT_AUDIENCE="a"))
    [warning] = auth_warnings(caplog)
    assert "GATEWAY_JWT_ISSUER" in warning.getMessage()
    assert "GATEWAY_JWT_AUDIENCE" not in warning.getMessage()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"GATEWAY_JWT_SECRET": "too-short", **OURS}, "GATEWAY_JWT_SECRET"),
        ({"GATEWAY_JWKS_URL": JWKS}, "GATEWAY_JWT_ISSUER"),
    ],
)
def test_scrobble_gateway_says_so_on_one_line_and_exits_2(
    environ: dict[str, str], named: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = subprocess.run(
        [SCROBBLE, "gateway"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **clean,
            "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            # Refused before any connection is tried: an unreachable database proves it.
            "DATABASE_URL": "postgresql://127.0.0.1:1/none",
            **environ,
        },
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "too-short" not in result.stderr
