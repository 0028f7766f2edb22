"""deploy/docker/Dockerfile and /.dockerignore. No image is built here (no Docker engine):
hadolint lints the file, and the install step the builder stage runs (`uv sync --frozen
--no-dev --no-editable` on exactly the files the build context lets in) is run for real into
a scratch virtualenv, whose `scrobble` must then run each target's command."""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scrobble_cli.main import build_parser
from tests.deploy.support import DOCKERFILE, REPO, run, tool

TARGETS = ("ingest", "dispatcher", "gateway", "intake", "sandbox")
# The HTTP servers, whose listen address defaults to loopback outside a container.
LISTEN_HOSTS = {"gateway": "GATEWAY_HOST", "intake": "INTAKE_HOST"}


def dockerfile() -> str:
    return DOCKERFILE.read_text()


def stage(name: str) -> str:
    """The instructions of one stage, up to the next FROM."""
    found = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile(), re.M | re.S)
    assert found, f"no stage {name}"
    return found.group(1)


def test_hadolint_passes() -> None:
    run(tool("hadolint"), str(DOCKERFILE))


def test_base_image_is_pinned_to_an_exact_python_311_slim_bookworm() -> None:
    pinned = re.search(r"^ARG PYTHON_IMAGE=python:(\S+)$", dockerfile(), re.M)
    assert pinned, "PYTHON_IMAGE not pinned"
    assert re.fullmatch(r"3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", pinned.group(1))


def test_uv_version_is_the_makefiles() -> None:
    makefile = (REPO / "Makefile").read_text()
    make_uv = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    docker_uv = re.search(r"^ARG UV_VERSION=(\S+)$", dockerfile(), re.M)
    assert make_uv
    assert docker_uv
    assert docker_uv.group(1) == make_uv.group(1)


def test_installs_from_the_lock_without_dev_dependencies() -> None:
    builder = stage("builder")
    assert "uv sync --frozen --no-dev --no-install-project" in builder
    assert "uv sync --frozen --no-dev --no-editable" in builder


@pytest.mark.parametrize("target", TARGETS)
def test_targets_run_as_non_root_with_a_health_check(target: str) -> None:
    runtime = stage("runtime")
    user = re.search(r"^USER (\d+)(?::(\d+))?$", runtime, re.M)
    assert user
    assert int(user.group(1)) != 0
    body = stage(target)
    assert "USER" not in body, f"{target} must not switch user again"
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD \[\"python\", \"/app/healthcheck.py\"", body, re.M)


def env_of(body: str) -> dict[str, str]:
    """The ENV instructions of a stage (``ENV A=1 \\`` continuation lines included)."""
    found: dict[str, str] = {}
    for instruction in re.findall(r"^ENV ((?:.*\\\n)*.*)$", body, re.M):
        for name, value in re.findall(r"(\w+)=(\S+)", instruction.replace("\\\n", " ")):
            found[name] = value
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_targets_expose_the_port_their_health_check_asks(target: str) -> None:
    body = stage(target)
    exposed = re.findall(r"^EXPOSE (\d+)$", body, re.M)
    check = re.search(r'CMD \["python", "/app/healthcheck.py", "(\w+)", "(\d+)"', body)
    assert check, f"{target}: no health check"
    variable, port = check.groups()
    assert exposed == [port], f"{target}: EXPOSE {exposed}, health check on {port}"
    # Where the stage sets the port variable, it sets the same port.
    assert env_of(body).get(variable, port) == port, f"{target}: {variable}"


@pytest.mark.parametrize(("target", "variable"), sorted(LISTEN_HOSTS.items()))
def test_http_servers_listen_on_every_interface_in_the_container(
    target: str, variable: str
) -> None:
    assert env_of(stage(target)).get(variable) == "0.0.0.0"  # noqa: S104 - in its container


def test_the_intake_target() -> None:
    body = stage("intake")
    assert env_of(body) == {"INTAKE_HOST": "0.0.0.0", "INTAKE_PORT": "8081"}  # noqa: S104
    assert re.search(r'^CMD \["intake"\]$', body, re.M)


def test_the_header_comment_lists_every_target() -> None:
    listed = re.findall(r"^#\s+docker build .*--target (\w+)\s", dockerfile(), re.M)
    assert sorted(listed) == sorted(TARGETS)
    stages = set(re.findall(r"^FROM \S+ AS (\w+)$", dockerfile(), re.M))
    assert stages == {"builder", "runtime", *TARGETS}


def subcommands() -> set[str]:
    return {
        name
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }


@pytest.mark.parametrize("target", TARGETS)
def test_targets_run_a_real_scrobble_subcommand(target: str) -> None:
    command = re.search(r'^CMD \["(\w+)"', stage(target), re.M)
    assert command, f"{target}: no CMD"
    assert command.group(1) in subcommands()


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule for the patterns used here: the last pattern that matches
    the path, or one of its parent directories, decides; `!` lets a path back in."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, body) for prefix in prefixes)
        if hit:
            result = not negate
    return result


def build_context(target_dir: Path) -> list[str]:
    """Copy what /.dockerignore lets into the build context; returns the copied paths."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    copied = []
    for path in tracked:
        if (REPO / path).is_file() and not ignored(path, patterns):
            (target_dir / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / path, target_dir / path)
            copied.append(path)
    return copied


def test_build_context_holds_what_the_image_needs_and_no_more(tmp_path: Path) -> None:
    copied = build_context(tmp_path)
    for needed in ("pyproject.toml", "uv.lock", "README.md", "deploy/docker/healthcheck.py"):
        assert needed in copied
    assert any(p.startswith("shared/scrobble_shared/migrations/") for p in copied)
    assert not any(p.startswith(("tests/", ".local/", ".venv/", "bench/")) for p in copied)


def uv() -> str:
    for candidate in (shutil.which("uv"), str(REPO / ".local" / "tools" / "bin" / "uv")):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError("uv not found: `make install` puts it in .local/tools/bin")


def test_the_builder_stage_install_works_on_the_build_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    build_context(context)
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
    }
    env.pop("VIRTUAL_ENV", None)
    for args in (["--no-install-project"], ["--no-editable"]):
        done = subprocess.run(
            [uv(), "sync", "--frozen", "--no-dev", "--python", "python3.11", *args],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    scrobble = venv / "bin" / "scrobble"
    # Installed as a wheel: the code runs from the virtualenv, not from the context.
    shutil.rmtree(context)
    for target in ("migrate", *TARGETS):
        run(str(scrobble), target, "--help", cwd=tmp_path)
    pytest_missing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pytest"], capture_output=True, check=False
    )
    assert pytest_missing.returncode != 0, "dev dependencies ended up in the image"
    healthcheck = tmp_path / "healthcheck.py"
    shutil.copy2(REPO / "deploy" / "docker" / "healthcheck.py", healthcheck)
    # Nothing listens on port 9 (discard): the health check must say unhealthy.
    refused = subprocess.run(
        [str(venv / "bin" / "python"), str(healthcheck), "NO_SUCH_VARIABLE", "9"],
        capture_output=True,
        check=False,
    )
    assert refused.returncode == 1
