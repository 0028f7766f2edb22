"""Cancelling a running import (issue 20, point 4): by its owner through the gateway
(``POST /import/jobs/{id}/cancel``) or by the operator (``scrobble import cancel``). The job
is ``cancelled`` at once with the counts of the pages it saved; the worker stops reading
(at its next page, or at its next lease renewal while it waits); what it imported stays,
and importing again adds only the rest. Another user's job is a 404, a finished one 409."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from scrobble_sandbox.core.recording import RecordedRequest
from tests.integration.gateway.openapi_check import check_answer
from tests.integration.imports.support import USER, ImportSetup, ImportWorkerProcess
from tests.integration.imports.test_full_and_incremental import trakt_seed
from tests.support.services import SCROBBLE

pytestmark = pytest.mark.integration

PLAYS = 3_000  # 30 pages of history
CANCEL = "/api/v1/scrobble/import/jobs/{id}/cancel"


async def cancel(imports: ImportSetup, job_id: str, user: uuid.UUID = USER) -> Any:
    answer = await imports.gateway.client.post(
        CANCEL.format(id=job_id), headers=imports.gateway.auth(user)
    )
    check_answer("POST", CANCEL, answer.status, answer.content_type, await answer.read())
    return answer


async def wait_for_log(worker: ImportWorkerProcess, text: str, deadline_s: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while text not in worker.log_path.read_text(errors="replace"):
        if loop.time() > end:
            raise AssertionError(f"no {text!r} in {deadline_s} s:\n{worker.log_tail()}")
        await asyncio.sleep(0.2)


def pages_of(imports: ImportSetup, job: dict[str, Any]) -> list[RecordedRequest]:
    """The history pages a job asked for (each job reads up to its own until: end_at)."""
    until = job["until"][:19]
    return [
        r
        for r in imports.sandbox.trakt.requests("/sync/history")
        if r.query["end_at"][:19] == until
    ]


async def test_a_cancelled_import_stops_and_keeps_what_it_imported(imports: ImportSetup) -> None:
    sb = imports.sandbox
    await imports.connect("trakt")
    trakt_seed(sb, 0, PLAYS)
    sb.trakt.faults.slow(400, count=10_000, path_prefix="/sync/history")  # a page at a time
    worker = imports.worker(read_pacing=False)
    await worker.start()
    try:
        job = await imports.start("trakt")
        await imports.wait_job(job["id"], worker, until=lambda j: j["pages_done"] >= 3)

        stranger = await cancel(imports, job["id"], uuid.uuid4())
        assert stranger.status == 404
        unknown = await cancel(imports, str(uuid.uuid4()))
        assert unknown.status == 404
        answer = await cancel(imports, job["id"])
        assert answer.status == 200, await answer.text()
        cancelled = await answer.json()
        assert cancelled["state"] == "cancelled"
        assert cancelled["finished_at"] is not None
        assert 3 <= cancelled["pages_done"] < 30
        sb.trakt.faults.clear()

        await wait_for_log(worker, "cancelled; stopped", deadline_s=15)
        again = await cancel(imports, job["id"])
        assert again.status == 200  # cancelling twice is no error
        after = await again.json()
        # Nothing landed after the cancel: the counts are those of the pages kept.
        assert after == cancelled
        kept = await imports.count(
            "SELECT count(*) FROM imported_items WHERE import_job_id = $1", uuid.UUID(job["id"])
        )
        assert kept == cancelled["items_added"] == cancelled["items_seen"] > 0

        # Importing again reads it all and adds only the rest.
        second = await imports.start("trakt")
        done = await imports.wait_job(second["id"], worker, deadline_s=60)
        assert done["state"] == "done", worker.log_tail()
        finished = await cancel(imports, second["id"])
        assert finished.status == 409
    finally:
        assert await worker.stop() == 0
    assert done["items_added"] == PLAYS - kept
    assert await imports.count("SELECT count(*) FROM imported_items") == PLAYS
    # While the second job read its 30 pages, the cancelled one asked for none: at most
    # the page in flight when it was cancelled was asked for after its last saved one.
    first_pages = [int(r.query["page"]) for r in pages_of(imports, cancelled)]
    assert first_pages == list(range(1, len(first_pages) + 1))
    assert len(first_pages) <= cancelled["pages_done"] + 1
    assert len(pages_of(imports, done)) == 30
    log = worker.log_path.read_text()
    assert "lease lost" not in log, worker.log_tail()
    assert "Traceback" not in log, worker.log_tail()


async def scrobble(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        SCROBBLE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_scrobble_import_cancel_stops_a_job_while_it_waits(imports: ImportSetup) -> None:
    sb = imports.sandbox
    await imports.connect("trakt")
    trakt_seed(sb, 0, PLAYS)
    # The first page draws a 429 that says to come back in two minutes: the worker waits.
    sb.trakt.faults.rate_limit(retry_after=120, path_prefix="/sync/history")
    worker = imports.worker(read_pacing=False)
    env = dict(worker.env)
    await worker.start()
    try:
        job = await imports.start("trakt")
        waiting = await imports.wait_job(job["id"], worker, until=lambda j: j["errors"] >= 1)
        assert (waiting["state"], waiting["pages_done"]) == ("running", 0)

        code, out = await scrobble(env, "import", "cancel", job["id"])
        assert code == 0, out
        assert f"cancelled import job {job['id']} (trakt): 0 page(s)" in out
        # Noticed at the next lease renewal (every 5 s), not after the two minutes.
        await wait_for_log(worker, f"import {job['id']} (trakt): cancelled; stopping", 15)
        assert (await imports.job(job["id"]))["state"] == "cancelled"

        code, out = await scrobble(env, "import", "cancel", job["id"])
        assert code == 0, out
        assert "was cancelled already" in out
        missing = str(uuid.uuid4())
        code, out = await scrobble(env, "import", "cancel", missing)
        assert (code, out.strip()) == (1, f"scrobble: no import job {missing}")
        code, out = await scrobble(env, "import", "cancel", "not-a-job")
        assert code == 1
        assert "must be a uuid" in out
    finally:
        assert await worker.stop() == 0
    assert len(sb.trakt.requests("/sync/history")) == 1  # nothing asked after the 429
