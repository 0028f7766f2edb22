"""The import worker: the ``<prefix>imports`` subscriber, the jobs it runs in the
background, and the sweeper that takes over jobs whose worker died.

Why inside the dispatcher: an import reads the same services under the same limits as the
dispatcher writes, with the same tokens; in the same process it shares the pool, the HTTP
clients and the Postgres pacing slots, and needs nothing new to deploy. ``python -m
scrobble_dispatcher.imports`` runs this worker alone, for installations that want imports
on machines of their own (and for the throughput tests, with ``--no-read-pacing``).

Failure policy of the subscriber: a message names a job; the job is claimed in Postgres
(lease) and started as a background task, and the message is committed after the claim
(or when the job is finished or held elsewhere). A job lasts minutes, far beyond
``max_poll_interval_ms``, so it never runs inside the handler. Postgres away: the batch is
not committed and is read again. A worker that dies leaves its jobs ``running`` with a
lease that runs out; the sweeper (every replica, every few seconds) claims them and they go
on from their saved cursor. At shutdown the running jobs are cancelled and their leases
handed back, so the next worker takes them over at once. A job its owner cancels is
stopped at its next page save or, while it waits (a slow answer, a backoff), at the next
lease renewal: within a third of the lease (5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any, Final

import asyncpg
from faststream.kafka import KafkaMessage

from scrobble_dispatcher.imports import metrics, store
from scrobble_dispatcher.imports.runner import ImportRunner
from scrobble_shared.import_message import NotAnImportMessage, decode_job_id

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S: Final = 2.0
QUEUED_GRACE: Final = timedelta(seconds=30)
MAX_JOBS: Final = 4
STATES: Final = ("queued", "running", "done", "failed", "cancelled")


def job_ids(message: KafkaMessage) -> list[uuid.UUID]:
    """The jobs a batch names, in order (values that name none are skipped)."""
    raw = message.raw_message
    found: list[uuid.UUID] = []
    for record in raw if isinstance(raw, tuple) else (raw,):
        try:
            found.append(decode_job_id(record.value))
        except NotAnImportMessage:
            log.warning("skipping an imports message that names no job at offset %s", record.offset)
    return found


class ImportWorker:
    def __init__(self, runner: ImportRunner, max_jobs: int = MAX_JOBS) -> None:
        self._runner = runner
        self._max_jobs = max_jobs
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}

    @property
    def busy(self) -> bool:
        return len(self._tasks) >= self._max_jobs

    async def handle(self, message: KafkaMessage) -> None:
        for job_id in job_ids(message):
            if job_id not in self._tasks and not self.busy:
                await self.try_start(job_id)
            # Busy: the sweeper takes the job once it has been queued a while.
        await message.ack()

    async def try_start(self, job_id: uuid.UUID) -> bool:
        pool: asyncpg.Pool = self._runner.pool
        async with pool.acquire() as conn:
            job = await store.claim(conn, job_id, self._runner.owner, self._runner.lease)
            if job is not None and job.claims > store.MAX_CLAIMS:
                await store.fail(conn, job.id, None, f"gave up after {job.claims - 1} workers")
                return False
        if job is None:
            return False
        log.info("import %s (%s): claimed (claim %d)", job.id, job.service, job.claims)
        self._tasks[job.id] = asyncio.create_task(self._supervise(job), name=f"import-{job.id}")
        return True

    async def _supervise(self, job: store.Job) -> None:
        work = asyncio.create_task(self._runner.run(job))
        try:
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=self._runner.lease.total_seconds() / 3)
                if done:
                    break
                async with self._runner.pool.acquire() as conn:
                    held = await store.renew(conn, job.id, self._runner.owner, self._runner.lease)
                if held is store.Hold.CANCELLED:
                    log.info("import %s (%s): cancelled; stopping", job.id, job.service)
                    work.cancel()
                elif held is store.Hold.LOST:
                    log.warning("import %s: lease lost; stopping", job.id)
                    work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            if not work.cancelled() and work.exception() is not None:
                log.error("import %s stopped: %r", job.id, work.exception())
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            self._tasks.pop(job.id, None)

    async def sweep_forever(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """Until cancelled: take over jobs nobody runs, and sample the jobs gauge."""
        while True:
            try:
                await self.sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("import sweep failed: %s", exc)
            await asyncio.sleep(interval_s)

    async def sweep(self) -> None:
        async with self._runner.pool.acquire() as conn:
            states = await store.job_states(conn)
            room = self._max_jobs - len(self._tasks)
            ids = await store.claimable(conn, QUEUED_GRACE, room) if room > 0 else []
        for state in STATES:
            metrics.JOBS.labels(state).set(states.get(state, 0))
        for job_id in ids:
            if job_id not in self._tasks:
                await self.try_start(job_id)

    async def close(self) -> None:
        """Cancel the running jobs and hand their leases back."""
        tasks = dict(self._tasks)
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            async with self._runner.pool.acquire() as conn:
                for job_id in tasks:
                    await store.release(conn, job_id, self._runner.owner)


def subscriber_options(group_id: str) -> dict[str, Any]:
    """How the imports topic is consumed (manual commits after the claim, see above)."""
    from faststream import AckPolicy

    from scrobble_shared.runtime import no_decode

    return {
        "group_id": group_id,
        "batch": True,
        "max_records": 50,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.MANUAL,
        "decoder": no_decode,
        "max_poll_interval_ms": 300_000,
    }
