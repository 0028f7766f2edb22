"""The chaos harness's short run (bench/chaos, issue 19), part of every ``make test``: the
whole system on a Kafka broker and a Postgres server of the harness's own (never the
shared ones), under load, through one trial of each fault (kill -9 of every process kind,
of the broker and of Postgres; cut, slow, lossy and partitioned network; a fake that
answers too late and one that breaks its answer off; a media server's clock ten minutes
ahead). Nothing may be lost and nothing doubled at the fakes. ``make chaos`` runs the
long version."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1200)
def test_a_short_chaos_run_loses_and_doubles_nothing() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.chaos",
            "--mode",
            "short",
            "--state-dir",
            str(REPO / ".local" / "chaos-ci"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    took = time.monotonic() - started
    print(run.stdout[-8000:])
    print(f"the short chaos run took {took:.0f} s")
    found = re.findall(r"^RESULT .*$", run.stdout, re.MULTILINE)
    assert found, f"no RESULT line; exit {run.returncode}\n{run.stderr[-4000:]}"
    result = dict(field.split("=", 1) for field in found[-1].split()[1:])
    assert int(result["trials"]) >= 10, found[-1]
    assert result["lost"] == "0", found[-1]
    assert result["doubled"] == "0", found[-1]
    assert run.returncode == 0, f"{found[-1]}\n{run.stderr[-4000:]}"
