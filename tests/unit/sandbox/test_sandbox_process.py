"""`python -m scrobble_sandbox` and the installed `scrobble sandbox` console script as real
processes: exports printed first, usable from a shell, clean exit 0 on SIGTERM. How fast
the exports come is printed, not asserted: a timing threshold fails on a loaded machine
(DEVELOPERS.md: speed is measured in bench/, not in the suite)."""

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from scrobble_sandbox.env import CREDENTIALS, URL_PATHS

# A deadline for a hung process, not a speed requirement.
STARTUP_DEADLINE = 30.0
# Each fake's URLs and app credentials, and the sandbox user's token.
EXPECTED_LINES = len(URL_PATHS) + len(CREDENTIALS) + 1
# The console script pip installed next to this interpreter (.venv/bin/scrobble).
SCROBBLE_SCRIPT = Path(sys.executable).with_name("scrobble")
COMMANDS = {
    "python -m scrobble_sandbox": [sys.executable, "-m", "scrobble_sandbox", "--host", "127.0.0.1"],
    "scrobble sandbox": [str(SCROBBLE_SCRIPT), "sandbox"],
}


def test_console_script_is_installed():
    assert SCROBBLE_SCRIPT.is_file(), f"{SCROBBLE_SCRIPT} is not installed"


@pytest.mark.parametrize("command", list(COMMANDS))
async def test_process_prints_exports_fast_and_stops_on_sigterm(tmp_path: Path, command: str):
    argv = [*COMMANDS[command], "--port", "0"]
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = started + STARTUP_DEADLINE
        while len(lines) < EXPECTED_LINES:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(lines)} export lines after {STARTUP_DEADLINE}s"
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=remaining)
            assert line, "sandbox exited before printing its exports"
            lines.append(line.decode())
        elapsed = time.monotonic() - started
        print(f"{command}: start-up to exports {elapsed:.2f}s")
        assert all(line.startswith("export ") for line in lines)

        exports = tmp_path / "exports"
        exports.write_text("".join(lines))
        script = (
            'eval "$(cat "$1")"; '
            'curl -sf -H "Authorization: Token $SANDBOX_TOKEN" '
            '"$LISTENBRAINZ_API_URL/validate-token"; '
            'echo; printf "%s\\n" "$LASTFM_API_URL" "$TRAKT_CLIENT_ID"'
        )
        shell = await asyncio.create_subprocess_exec(
            "bash", "-c", script, "sh", str(exports), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(shell.communicate(), timeout=10)
        assert shell.returncode == 0
        validated, lastfm_url, client_id = out.decode().splitlines()[:3]
        assert json.loads(validated)["valid"] is True
        assert lastfm_url.startswith("http://127.0.0.1:")
        assert lastfm_url.endswith("/2.0/")
        assert client_id == "sandbox-trakt-client-id"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), timeout=5)
    assert code == 0


async def test_busy_port_is_an_error_not_a_crash():
    holder = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = holder.sockets[0].getsockname()[1]
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scrobble_sandbox",
            "--port",
            str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=10)
    finally:
        holder.close()
        await holder.wait_closed()
    assert proc.returncode == 1
    assert out == b""
    assert b"cannot listen" in err
