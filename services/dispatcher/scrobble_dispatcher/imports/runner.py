"""Running one import job: page after page, paced on the dispatcher's limiter, each page
saved with the cursor after it.

Failure policy:

- a page that gets no usable answer (429, 5xx, a timeout, a body that is no page) is
  asked again after max(a growing backoff, the service's Retry-After), up to
  ``max_attempts`` times; each failure is counted on the job (``errors``, ``last_error``);
  then the job fails with that reason;
- an expired access token (Trakt: known expired, or refused with a 401) is refreshed the
  way delivery refreshes it (``token_refresh.py``: the refresh token spent once, the new
  pair stored before it is used) and the page asked again once with it; a refresh in
  flight elsewhere, or a token endpoint that cannot answer now, is waited for like a
  page without an answer; a refresh the service refuses: failed, "reconnect", and the
  connection marked as needing reconnect (as delivery marks it);
- a refused token (401/403, Last.fm 9) nothing can refresh: failed, "reconnect"; any
  other refusal: failed;
- a token no configured key opens: failed with ``UNREADABLE_TOKENS_REASON``, and the
  connection marked as needing reconnect with it; nothing is asked of the service;
- reasons (``last_error``) are plain text of at most ``REASON_LIMIT`` characters, cleaned
  of the connection's token should an answer quote it;
- Postgres or Kafka away: the exception ends the run without touching the job; its lease
  runs out and a worker takes it over from the last saved cursor;
- the lease lost to another worker (this one stalled past it): stop, write nothing more;
- the job cancelled (``scrobble_shared.db.imports``): the same, at the next page save (or
  the worker's next lease renewal, see ``worker.py``); the pages saved before stay, with
  the job's counts of them; the page in flight is rolled back.

One page, one transaction: the page's new ``imported_items`` rows, the two-way sync work
(``scrobbles`` rows like ingest's, through ``queue_scrobbles``), the outbox rows for that
work and for ``<prefix>imported``, and the job's cursor and counts. The outbox rows are
published after the commit; whatever a crash leaves is published by outbox recovery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NoReturn

import asyncpg

from scrobble_dispatcher import pacing, repository
from scrobble_dispatcher.clients.base import HttpResponse, Outcome, OutcomeKind, readable_reason
from scrobble_dispatcher.imports import metrics, store, sync
from scrobble_dispatcher.imports.core import (
    Cursor,
    HistoryReader,
    ImportRefused,
    JobContext,
    Page,
    UnexpectedAnswer,
)
from scrobble_dispatcher.paced_call import call_on_slot
from scrobble_dispatcher.token_refresh import TokenRefresher
from scrobble_dispatcher.tokens import RefreshConfig
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import UNREADABLE_TOKENS_REASON, mark_tokens_unreadable
from scrobble_shared.db.scrobbles import queue_scrobbles
from scrobble_shared.outbox import OutboxMessage, OutboxRelay, insert_outbox_messages
from scrobble_shared.work_message import WorkTopics, new_scrobble

log = logging.getLogger(__name__)

LEASE: Final = timedelta(seconds=15)
MAX_ATTEMPTS: Final = 5
FIRST_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 60.0


@dataclass(frozen=True)
class ImportTopics:
    """Where the import worker writes: sync work like ingest's, and imported items."""

    work: WorkTopics
    imported: str


class JobFailed(Exception):
    """The job cannot go on; the message is the reason recorded on it."""


@dataclass
class _Access:
    """The token a job reads with, and its version; replaced when it is refreshed."""

    ctx: JobContext
    version: int


class ImportRunner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        relay: OutboxRelay,
        readers: Mapping[str, HistoryReader],
        http: Mapping[Any, ClientSet],
        topics: ImportTopics,
        app_keys: Mapping[str, str],
        *,
        owner: uuid.UUID | None = None,
        lease: timedelta = LEASE,
        read_pacing: bool = True,
        max_attempts: int = MAX_ATTEMPTS,
        first_backoff_s: float = FIRST_BACKOFF_S,
        refresh: Mapping[str, RefreshConfig] | None = None,
    ) -> None:
        self.pool = pool
        self._pacer = pacing.Pacer(pool)
        self.owner = owner or uuid.uuid4()
        self.lease = lease
        self._cipher = cipher
        self._relay = relay
        self._readers = dict(readers)
        self._http = dict(http)
        self._topics = topics
        self._app_keys = dict(app_keys)
        self._read_pacing = read_pacing
        self._max_attempts = max_attempts
        self._first_backoff_s = first_backoff_s
        self._refresh = dict(refresh or {})
        self._tokens = TokenRefresher(pool, cipher, self._http)

    async def run(self, job: store.Job) -> None:
        """Run a claimed job to its end (done or failed); see the module docstring."""
        try:
            await self._run(job)
        except JobFailed as exc:
            reason = readable_reason(str(exc))
            log.info("import %s (%s) failed: %s", job.id, job.service, reason)
            async with self.pool.acquire() as conn:
                await store.fail(conn, job.id, self.owner, reason)
        except store.JobCancelled:
            log.info("import %s (%s): cancelled; stopped", job.id, job.service)
        except store.LeaseLost:
            log.warning("import %s: taken over by another worker; stopping", job.id)

    async def _run(self, job: store.Job) -> None:
        reader = self._readers.get(job.service)
        if reader is None:
            raise JobFailed(f"{job.service} is not enabled on this installation")
        async with self.pool.acquire() as conn:
            found = await store.connection(conn, job.connection_id)
            others = await store.other_connections(conn, job.user_id)
            tokens = await repository.connection_state(conn, self._cipher, job.connection_id)
        if found is None or tokens is None or found.token_enc is None:
            raise JobFailed("the connection has no token")
        if not found.rules.enabled or found.status != "active":
            raise JobFailed("the connection is disabled or needs reconnecting")
        if tokens.token is None:
            await self._unreadable(job)
        ctx = JobContext(
            connection_id=job.connection_id,
            token=tokens.token,
            user_name=found.user_name,
            since=job.since,
            until=job.until,
        )
        cursor: Cursor | None = job.cursor
        if cursor is None:
            try:
                cursor = reader.start(ctx)
            except ImportRefused as exc:
                raise JobFailed(str(exc)) from None
            async with self.pool.acquire() as conn:
                await store.save_start(conn, job, self.owner, cursor)
        log.info("import %s (%s): from %s", job.id, job.service, cursor)
        access = _Access(ctx, tokens.tokens.version)
        while cursor is not None:
            page = await self._page(job, reader, cursor, access)
            await self._save(job, found.rules, others, page)
            cursor = page.next_cursor
        log.info("import %s (%s): done", job.id, job.service)

    async def _page(
        self, job: store.Job, reader: HistoryReader, cursor: Cursor, access: _Access
    ) -> Page:
        backoff = self._first_backoff_s
        outcome: Outcome | None = None
        for attempt in range(1, self._max_attempts + 1):
            answer = await self._attempt(job, reader, cursor, access)
            if isinstance(answer, Page):
                return answer
            outcome = answer
            if outcome.kind is not OutcomeKind.RETRY:
                if outcome.kind in (OutcomeKind.RECONNECT, OutcomeKind.REFRESH):
                    raise JobFailed(f"{outcome.reason}; reconnect {job.service}")
                raise JobFailed(outcome.reason)
            async with self.pool.acquire() as conn:
                await store.note_error(conn, job.id, self.owner, outcome.reason)
            if attempt == self._max_attempts:
                break
            wait = max(backoff, outcome.retry_after_s or 0.0)
            log.info("import %s: %s; again in %.1f s", job.id, outcome.reason, wait)
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        reason = outcome.reason if outcome is not None else "no answer"
        raise JobFailed(f"gave up after {self._max_attempts} attempts: {reason}")

    async def _attempt(
        self, job: store.Job, reader: HistoryReader, cursor: Cursor, access: _Access
    ) -> Page | Outcome:
        """One try at a page with a token worth using: refreshed first when it is known to
        have expired, and the page asked once more with a new one when the service refuses
        it (services that refresh, Trakt)."""
        waiting = await self._usable_token(job, access, rejected=False)
        if waiting is not None:
            return waiting
        answer = await self._read(job, reader, cursor, access.ctx)
        if (
            isinstance(answer, Outcome)
            and answer.kind is OutcomeKind.REFRESH
            and job.service in self._refresh
        ):
            waiting = await self._usable_token(job, access, rejected=True)
            if waiting is not None:
                return waiting
            # Once: a new token refused at once ends the job (reconnect).
            answer = await self._read(job, reader, cursor, access.ctx)
        return answer

    async def _read(
        self, job: store.Job, reader: HistoryReader, cursor: Cursor, ctx: JobContext
    ) -> Page | Outcome:
        """The page, or what to do about an answer that is none (secrets taken out)."""
        response = await self._fetch(job, reader, cursor, ctx)
        outcome = response if isinstance(response, Outcome) else reader.judge(response)
        if outcome is None and isinstance(response, HttpResponse):
            try:
                return reader.read(cursor, response, ctx)
            except UnexpectedAnswer as exc:
                outcome = Outcome.retry(str(exc), response.status)
        assert outcome is not None
        return outcome.scrubbed([ctx.token])

    async def _usable_token(
        self, job: store.Job, access: _Access, *, rejected: bool
    ) -> Outcome | None:
        """None when ``access`` now holds a token worth using (refreshed if need be, by
        the refresh path delivery uses); else the retry outcome to wait for. Raises
        :class:`JobFailed` when only a reconnect helps. ``rejected``: the service has just
        refused the token of ``access``."""
        config = self._refresh.get(job.service)
        if config is None:
            return None
        # Read again every time: another process may have refreshed (or be refreshing).
        async with self.pool.acquire() as conn:
            state = await repository.connection_state(conn, self._cipher, job.connection_id)
        if state is not None and state.unreadable:
            await self._unreadable(job)
        if state is None or state.token is None or state.status != "active":
            raise JobFailed(_reconnect("the connection changed during the import", config))
        ready = await self._tokens.usable(
            job.connection_id, job.service, state, config, access.version if rejected else None
        )
        if isinstance(ready, repository.ConnectionState):
            assert ready.token is not None  # a state handed back holds the token to use
            access.ctx = replace(access.ctx, token=ready.token)
            access.version = ready.tokens.version
            return None
        if ready.unreadable:
            await self._unreadable(job)
        if ready.retry_at is None:
            raise JobFailed(_reconnect(ready.reason, config))
        wait = (ready.retry_at - datetime.now(UTC)).total_seconds()
        return Outcome.retry(ready.reason, None, max(wait, 0.0))

    async def _unreadable(self, job: store.Job) -> NoReturn:
        """No configured key opens the connection's tokens: marked as needing reconnect,
        and the job fails saying so (nothing is asked of the service)."""
        async with self.pool.acquire() as conn:
            await mark_tokens_unreadable(conn, job.connection_id)
        raise JobFailed(UNREADABLE_TOKENS_REASON)

    async def _fetch(
        self, job: store.Job, reader: HistoryReader, cursor: Cursor, ctx: JobContext
    ) -> HttpResponse | Outcome:
        """Wait for the pacing slot on the service's read keys, send, and settle the slot
        after the call (``pacing.after_call``: keys spaced, lanes given back, any wait the
        service set honoured)."""
        keys = reader.pacing_keys(job.connection_id, self._app_keys.get(job.service, ""))
        if not self._read_pacing:
            keys = [pacing.PaceKey(k.key, timedelta(0)) for k in keys]
        slot = await self._pacer.reserve(keys, None)
        return await call_on_slot(
            self.pool,
            self._http[job.service],
            slot,
            keys,
            reader.request(cursor, ctx),
            service=job.service,
            endpoint="import",
            wait_before_next_s=reader.wait_before_next_s,
        )

    async def _save(
        self,
        job: store.Job,
        source: Any,
        others: Sequence[Any],
        page: Page,
    ) -> None:
        contents = [sync.content_of(job.service, item) for item in page.items]
        async with self.pool.acquire() as conn, conn.transaction():
            new = await store.insert_items(conn, job, page.items, contents)
            work_messages, queued = await self._sync(conn, job, source, others, new)
            messages = work_messages + [self._imported_message(job, n) for n in new]
            written = await insert_outbox_messages(conn, messages)
            await store.save_progress(
                conn, job, self.owner, self.lease, page.next_cursor, len(page.items), len(new)
            )
        metrics.PAGES.labels(job.service).inc()
        metrics.ITEMS.labels(job.service, "added").inc(len(new))
        metrics.ITEMS.labels(job.service, "already_imported").inc(len(page.items) - len(new))
        for service, count in queued.items():
            metrics.SYNC_WORK.labels(service).inc(count)
        try:
            await self._relay.publish_written(written)
        except Exception as exc:  # the rows stay in the outbox; recovery publishes them
            log.warning("import %s: publishing deferred to outbox recovery (%s)", job.id, exc)

    async def _sync(
        self,
        conn: Any,
        job: store.Job,
        source: Any,
        others: Sequence[Any],
        new: Sequence[store.NewItem],
    ) -> tuple[list[OutboxMessage], dict[str, int]]:
        """Scrobble work for the user's other connections from the page's new items,
        without the plays (and ratings) those connections already have."""
        wanted: dict[uuid.UUID, list[tuple[store.NewItem, Any]]] = {}
        for entry in new:
            event = sync.event_of(job.user_id, job.service, entry.item, entry.content)
            if event is None:
                continue
            for work in sync.sync_work(source, others, event, entry.item):
                wanted.setdefault(work.connection_id, []).append((entry, work))
        rows = []
        for connection_id, pairs in wanted.items():
            for rating in (False, True):
                chosen = [(e, w) for e, w in pairs if (e.item.kind == "rating") is rating]
                if not chosen:
                    continue
                moments = [e.item.occurred_at for e, _ in chosen]
                nearby = await store.nearby_contents(
                    conn, connection_id, moments, rating, sync.MATCH_WINDOW
                )
                for index, (entry, work) in enumerate(chosen):
                    if any(sync.same_item(entry.content, c) for c in nearby.get(index, [])):
                        continue
                    rows.append(new_scrobble(work, job.user_id, entry.content, None))
        if not rows:
            return [], {}
        return await queue_scrobbles(conn, rows, self._topics.work)

    def _imported_message(self, job: store.Job, new: store.NewItem) -> OutboxMessage:
        item = new.item
        value = {
            "message_id": str(new.id),
            "user_id": str(job.user_id),
            "connection_id": str(job.connection_id),
            "service": job.service,
            "import_job_id": str(job.id),
            "kind": item.kind,
            "occurred_at": item.occurred_at.isoformat(),
            "rating": item.rating,
            "progress": item.progress,
            "content": new.content,
        }
        return OutboxMessage(
            topic=self._topics.imported,
            key=str(job.user_id).encode(),
            value=json.dumps(value, separators=(",", ":")).encode(),
            headers={"kind": item.kind},
            message_id=f"imported:{new.id}",
        )


def _reconnect(reason: str, config: RefreshConfig) -> str:
    """A reason that tells the user what to do (the refresh path's own reasons say it)."""
    if "reconnect" in reason:
        return reason
    return f"{reason}; reconnect {config.service_label}"
