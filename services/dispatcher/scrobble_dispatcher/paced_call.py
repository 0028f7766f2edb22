"""One paced HTTP call, the same for deliveries and history imports: wait for the slot,
send on a free client, settle the slot whatever happened.

Failure policy: a call that got no answer (connection error, httpx timeout, no free
client and answer within ``pacing.CALL_DEADLINE``) is a retry outcome, never an
exception; the slot is settled even on cancellation (``pacing.after_call``: keys spaced
from the call, lanes given back, the service's own wait honoured), so a lane is never
left parked by a call that is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import asyncpg

from scrobble_dispatcher import metrics, pacing
from scrobble_dispatcher.transport import ClientSet, TransportFailure, send
from scrobble_shared.trackers import pace
from scrobble_shared.trackers.http import HttpRequest, HttpResponse, Outcome


async def call_on_slot(
    pool: asyncpg.Pool,
    clients: ClientSet,
    slot: pacing.Slot,
    keys: Sequence[pace.PaceKey],
    request: HttpRequest,
    *,
    service: str,
    endpoint: str,
    wait_before_next_s: Callable[[HttpResponse], float | None],
) -> HttpResponse | Outcome:
    """The response of ``request`` sent at ``slot`` (taken), or the retry outcome of a
    call that got none."""
    loop = asyncio.get_running_loop()
    sent_at = slot.at
    answer: HttpResponse | Outcome | None = None
    try:
        wait = (slot.at - datetime.now(UTC)).total_seconds()
        if wait > 0:
            metrics.RATE_LIMIT_WAIT.labels(service).observe(wait)
            await asyncio.sleep(wait)
        # The wait for a free client and the call together stay inside the deadline the
        # slot's lanes count on.
        try:
            async with (
                asyncio.timeout(pacing.CALL_DEADLINE.total_seconds()),
                clients.one() as http,
            ):
                started, sent_at = loop.time(), datetime.now(UTC)
                try:
                    answer = await send(http, request)
                finally:
                    metrics.REQUEST_SECONDS.labels(service, endpoint).observe(loop.time() - started)
        except TransportFailure as exc:
            answer = Outcome.retry(str(exc))
        except TimeoutError:
            answer = Outcome.retry(f"no answer within {pacing.CALL_DEADLINE}")
        return answer
    finally:
        service_wait = wait_before_next_s(answer) if isinstance(answer, HttpResponse) else None
        async with pool.acquire() as conn:
            await pacing.after_call(conn, slot, keys, sent_at, datetime.now(UTC), service_wait)
