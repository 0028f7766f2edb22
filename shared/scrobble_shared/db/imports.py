"""The ``import_jobs`` statements more than one service runs: cancelling a job (the gateway's
``POST /import/jobs/{id}/cancel`` for its owner, ``scrobble import cancel`` for the
operator).

A cancel is one conditional UPDATE: a queued or running job becomes ``cancelled`` with
``finished_at``, and its lease is taken from its worker. Every write of a worker is fenced
on ``state = 'running'`` and its own lease (``scrobble_dispatcher.imports.store``), so from
that moment nothing more lands: the pages already saved stay (their items and the job's
counts, which were saved in the same transactions), the page in flight is rolled back, and
the worker stops at its next write or lease renewal (a few seconds at most). No worker
has to be alive for it: a queued job, or one whose worker died, is cancelled all the same.
"""

from __future__ import annotations

from typing import Final, Literal
from uuid import UUID

from scrobble_shared.db import Conn

CancelResult = Literal["cancelled", "already_cancelled", "finished", "not_found"]

_CANCEL: Final = """
UPDATE import_jobs SET state = 'cancelled', finished_at = now(), updated_at = now(),
    lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND state IN ('queued', 'running')
RETURNING state
"""


async def cancel_import(conn: Conn, job_id: UUID, owner: UUID | None) -> CancelResult:
    """Cancel a queued or running job; ``owner`` None: any user's (the operator), else only
    a job of that user (another's is ``not_found``). ``finished``: it was done or failed
    before the cancel came."""
    if await conn.fetchval(_CANCEL, job_id, owner) is not None:
        return "cancelled"
    state = await conn.fetchval(
        "SELECT state FROM import_jobs WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
        job_id,
        owner,
    )
    if state is None:
        return "not_found"
    return "already_cancelled" if state == "cancelled" else "finished"
