"""Delivering one claimed piece of work: pace, send, classify, then record what
``decide.py`` makes of the answer (``record.py``). What becomes of work after each kind of
answer (sent, retried, rate-limited, held for reconnect, failed, dead) is stated there;
what happens before and around the calls is stated here.

- REFRESH (services with a refresh config, Trakt): the tokens are refreshed once, the new
  pair persisted before it is used (``token_refresh.py``), and the work is sent again once
  with it. Tokens whose ``token_expires_at`` has passed are refreshed before the call. A
  refresh in flight elsewhere makes the work wait shortly; a refused refresh or none to
  make holds the work for reconnect.
- Tokens no configured key opens (the access token, or the refresh token when it is about
  to be spent): the same, with ``UNREADABLE_TOKENS_REASON``; nothing is called. Only that
  connection's work waits: the other deliveries of a batch go on. A connection marked so
  whose tokens open again (a key put back into ``TOKEN_ENCRYPTION_KEY``) is active again
  the next time work of it comes by.
- Secrets: a reason taken from an answer is cleaned of the request's own credentials
  (``Outcome.scrubbed``) before it is stored or logged.
- PERMANENT (and work that cannot become a request): dead with its reason, on the
  dead-letter topic and in history.
- Backlogs (:meth:`Deliverer.deliver_many`): consecutive scrobbles of one connection go
  together, up to 50 in one Last.fm ``track.scrobble`` and 100 in one ListenBrainz
  ``import``: one pacing slot per call. Last.fm answers item by item; an import's answer
  applies to each of its works; a work that cannot be sent is dead on its own.
- Sent again (an attempt before this one whose outcome nobody saw: the sender died, the
  answer was cut off or too late): the calls a service does not deduplicate itself (Trakt
  and Simkl history adds, Last.fm scrobbles) are preceded by a question to the service
  (``trackers/<name>/recheck.py``, paced on its read limits); what it holds already is
  sent (ALREADY_DONE), an answer that says nothing is retried like a failed write. A
  backlog that holds such work goes one by one.
- Pacing: the next free slot comes from Postgres (shared by all replicas); a slot more than
  ``MAX_INLINE_WAIT`` away reschedules the work for then rather than holding the consumer.
  An app's key shared by all users (Last.fm, Simkl) is taken in fair turns per user
  (``pacing.py``): work whose turn is further away waits for it the same way.
- Ids (``resolve/``, when a resolver is given): before the first call the item is resolved
  to the ids its service needs, through the shared lookup cache; lookups are paced like
  writes. An item the service cannot name is ``failed`` with the reason (not retried, not
  dead-lettered: replaying the same item cannot name it either); a lookup that got no
  answer (429, 5xx, timeout) is retried like a write; a lookup in flight at another
  replica makes the work wait a moment.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from scrobble_dispatcher import pacing, repository
from scrobble_dispatcher.decide import (
    RECONNECT_WAIT,
    Dead,
    Decision,
    DeliveryPolicy,
    Failed,
    Hold,
    WorkFacts,
    best_effort,
    decide,
    unexpected_error,
)
from scrobble_dispatcher.errors import is_transient
from scrobble_dispatcher.paced_call import call_on_slot
from scrobble_dispatcher.record import Recorder
from scrobble_dispatcher.resolve.resolver import IdResolver, ItemUnresolved, LookupInProgress
from scrobble_dispatcher.token_refresh import TokenRefresher
from scrobble_dispatcher.transport import ClientSet
from scrobble_shared import logs
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import (
    UNREADABLE_TOKENS_REASON,
    mark_tokens_unreadable,
    reactivate_readable,
    stored_tokens_open,
)
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.trackers import pace, registry
from scrobble_shared.trackers import refresh as tokens
from scrobble_shared.trackers.http import (
    Answer,
    BatchingClient,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    ServiceClient,
    Unsendable,
    UserCredentials,
    retry_after_s,
)
from scrobble_shared.trackers.recheck import NoAnswer, Recheck
from scrobble_shared.trackers.registry import tracker
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

log = logging.getLogger(__name__)

# Longer than the spacing of a multi-step delivery (AniList: lookup, read, save at 2 s
# apart per token), or such work would be put back before its last step, forever.
MAX_INLINE_WAIT: Final = timedelta(seconds=5)
LOOKUP_BUSY_WAIT: Final = timedelta(seconds=2)


class Deliverer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        clients: dict[str, ServiceClient],
        http: Mapping[Any, ClientSet],
        relay: OutboxRelay,
        policy: DeliveryPolicy,
        refresh: dict[str, tokens.RefreshConfig] | None = None,
        refresh_lease: timedelta = tokens.REFRESH_LEASE,
        resolver: IdResolver | None = None,
        rechecks: Mapping[str, Recheck] | None = None,
    ) -> None:
        self._resolver = resolver
        self._rechecks = dict(rechecks or {})
        self._refresh = refresh or {}
        self._tokens = TokenRefresher(pool, cipher, http, refresh_lease)
        self._pool = pool
        self._pacer = pacing.Pacer(pool)
        self._db = repository.Coalesced(pool, cipher)
        self._cipher = cipher
        self._clients = clients
        self._http = http
        self._policy = policy
        self._recorder = Recorder(pool, self._db, relay, policy.dead_letter_prefix)

    async def claim(self, scrobble_id: uuid.UUID) -> repository.Claimed | None:
        """Take a row for sending (``repository.claim``, coalesced with other deliveries)."""
        return await self._db.claim(scrobble_id)

    async def deliver(self, claimed: repository.Claimed) -> str:
        """Send one claimed row and record what became of it; returns the outcome label.
        Raises only what is transient (``errors.py``): anything else ends the row dead."""
        with logs.bound(
            scrobble_id=claimed.id, connection_id=claimed.connection_id, service=claimed.service
        ):
            try:
                return await self._deliver(claimed)
            except Exception as exc:
                if is_transient(exc):
                    raise
                [label] = await self._broken([claimed], exc)
                return label

    async def _broken(self, rows: Sequence[repository.Claimed], exc: Exception) -> list[str]:
        """Handling ``rows`` raised what no rule expects: those of them nothing recorded
        yet are dead with the error's kind (the traceback goes to the log); a label per
        row."""
        log.exception("delivery raised; its work that is still being sent is dead")
        decision = unexpected_error(exc)
        return [
            await self._recorder.apply(
                claimed, best_effort(_kind_of(claimed), decision), only_if_sending=True
            )
            for claimed in rows
        ]

    async def _record(
        self, claimed: repository.Claimed, work: ScrobbleWork, decision: Decision
    ) -> str:
        """Record ``decision`` (now playing's rule applied) for work read from its row."""
        return await self._recorder.apply(
            claimed, best_effort(work.kind, decision), work.occurred_at
        )

    async def _deliver(self, claimed: repository.Claimed) -> str:
        work = ScrobbleWork.from_message(claimed.request)
        state = await self._db.state(claimed.connection_id)
        if state is not None and state.enabled and state.unreadable:
            return await self._unreadable(claimed, work)
        if state is None or not state.enabled or state.token is None:
            why = "connection disabled" if state and not state.enabled else "no token stored"
            return await self._record(claimed, work, Dead(f"{work.service}: {why}"))
        if state.status == "needs_reconnect":
            if state.status_reason != UNREADABLE_TOKENS_REASON:
                at = datetime.now(UTC) + RECONNECT_WAIT
                return await self._record(claimed, work, Hold(at, "connection needs reconnecting"))
            # Marked because of the keys: if they open its tokens now, it is usable again.
            if not await stored_tokens_open(self._pool, self._cipher, claimed.connection_id):
                return await self._unreadable(claimed, work)
            await reactivate_readable(self._pool, [claimed.connection_id])
            log.info("connection %s: its tokens open again; active", claimed.connection_id)
        config = self._refresh.get(work.service)
        if config is not None:
            ready = await self._usable_token(claimed, work, state, config, None)
            if isinstance(ready, str):
                return ready
            state = ready
        try:
            assert state.token is not None
            user = UserCredentials(state.token, state.account_name, state.api_url)
            outcome = await self._send(work, claimed, user)
            if outcome.kind is OutcomeKind.REFRESH and config is not None:
                ready = await self._usable_token(claimed, work, state, config, state.tokens.version)
                if isinstance(ready, str):
                    return ready
                assert ready.token is not None
                # Once: a second refusal is handled by _apply (needs reconnect).
                user = UserCredentials(ready.token, ready.account_name, ready.api_url)
                outcome = await self._send(work, claimed, user)
        except Unsendable as exc:
            outcome = Outcome.permanent(str(exc))
        except _Rescheduled:
            return "paced"
        except ItemUnresolved as exc:
            return await self._record(claimed, work, Failed(str(exc), unresolved=True))
        except LookupInProgress as exc:
            at = datetime.now(UTC) + LOOKUP_BUSY_WAIT
            return await self._record(claimed, work, Hold(at, str(exc)))
        return await self._apply(claimed, work, outcome)

    async def _usable_token(
        self,
        claimed: repository.Claimed,
        work: ScrobbleWork,
        state: repository.ConnectionState,
        config: tokens.RefreshConfig,
        rejected_version: int | None,
    ) -> repository.ConnectionState | str:
        """The connection with an access token worth using, refreshed if need be
        (``token_refresh.py``); or, when there is none now, the outcome label after the work
        was put back (or failed)."""
        ready = await self._tokens.usable(
            claimed.connection_id, work.service, state, config, rejected_version
        )
        if isinstance(ready, repository.ConnectionState):
            return ready
        if ready.unreadable:
            return await self._unreadable(claimed, work)
        at = ready.retry_at or datetime.now(UTC) + RECONNECT_WAIT
        return await self._record(claimed, work, Hold(at, ready.reason))

    async def _unreadable(self, claimed: repository.Claimed, work: ScrobbleWork) -> str:
        """No configured key opens the connection's tokens: it needs reconnecting (said in
        the log once, when it is marked), and its work waits like any reconnect's."""
        async with self._pool.acquire() as conn:
            marked = await mark_tokens_unreadable(conn, claimed.connection_id)
        if marked:
            log.warning(
                "connection %s (%s): %s",
                claimed.connection_id,
                work.service,
                UNREADABLE_TOKENS_REASON,
            )
        at = datetime.now(UTC) + RECONNECT_WAIT
        return await self._record(claimed, work, Hold(at, UNREADABLE_TOKENS_REASON))

    async def _send(
        self, work: ScrobbleWork, claimed: repository.Claimed, user: UserCredentials
    ) -> Outcome:
        client = self._clients[work.service]
        if self._resolver is not None:
            resolved = await self._resolver.resolve(
                work,
                claimed.connection_id,
                user,
                lambda request, keys: self._exchange(
                    client, work, claimed, request, keys=keys, endpoint="lookup"
                ),
            )
            if isinstance(resolved, Outcome):
                return resolved
            work = resolved
        if claimed.attempts > 1:
            seen = await self._recheck(work, claimed, user)
            if seen is not None:
                return seen
        return await self._converse(client, work, claimed, user)

    def _may_repeat(self, claimed: repository.Claimed) -> bool:
        """Tried before, and a repeat the service would keep twice."""
        check = self._rechecks.get(claimed.service)
        if check is None or claimed.attempts <= 1:
            return False
        return check.applies(ScrobbleWork.from_message(claimed.request))

    async def _recheck(
        self, work: ScrobbleWork, claimed: repository.Claimed, user: UserCredentials
    ) -> Outcome | None:
        """For work an earlier attempt may have delivered: ALREADY_DONE when the service
        holds it, an outcome to retry by when it could not tell, None to send it."""
        check = self._rechecks.get(work.service)
        if check is None or not check.applies(work):
            return None
        request = check.build(work, user)
        if request is None:
            return None
        client = self._clients[work.service]
        app_key = self._policy.app_keys.get(work.service, "")
        keys = check.pacing_keys(claimed.connection_id, app_key)
        sent = await self._paced_send(client, work, [claimed], request, keys, "recheck")
        if isinstance(sent, Outcome):
            return sent
        if sent.status == 401:
            return client.classify(work, sent).scrubbed(request.secrets())
        try:
            held = check.holds(work, sent)
        except NoAnswer as exc:
            reason = f"could not tell whether {work.service} has it already ({exc})"
            return Outcome.retry(reason, sent.status, retry_after_s(sent))
        if not held:
            return None
        log.info("%s had %s already: an earlier attempt got through", work.service, claimed.id)
        return Outcome.already_done(
            f"{work.service} had it already (an earlier attempt got through)", sent.status
        )

    async def _converse(
        self,
        client: ServiceClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        user: UserCredentials,
    ) -> Outcome:
        """Make the calls the client's conversation asks for, one after another, each
        paced, and hand it each answer; its outcome is the work's."""
        steps = client.steps(work, user)
        request = next(steps)
        while True:
            outcome, response = await self._exchange(client, work, claimed, request, user=user)
            try:
                request = steps.send(Answer(outcome, response))
            except StopIteration as done:
                result: Outcome = done.value
                return result

    async def _exchange(
        self,
        client: ServiceClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        request: HttpRequest,
        *,
        keys: list[pace.PaceKey] | None = None,
        endpoint: str | None = None,
        user: UserCredentials | None = None,
    ) -> tuple[Outcome, HttpResponse | None]:
        """Pace (on the write keys of ``user`` unless ``keys`` are given), send, classify;
        the response too, for steps that read it."""
        sent = await self._paced_send(client, work, [claimed], request, keys, endpoint, user)
        if isinstance(sent, Outcome):
            return sent, None
        return client.classify(work, sent).scrubbed(request.secrets()), sent

    async def _paced_send(
        self,
        client: ServiceClient,
        work: ScrobbleWork,
        rows: Sequence[repository.Claimed],
        request: HttpRequest,
        keys: list[pace.PaceKey] | None = None,
        endpoint: str | None = None,
        user: UserCredentials | None = None,
    ) -> HttpResponse | Outcome:
        """Wait for the pacing slot (or put ``rows`` back for it), then send: the response,
        or the retry outcome of a call that got none. One call, one slot, however many
        works it carries. The write keys count what the service limits: the user's
        account or token (``pace.limited_account``), else the connection."""
        head = rows[0]
        if keys is None:
            account = None
            if user is not None:
                account = registry.limited_account(work.service, user.token, user.account)
            keys = registry.pacing_keys(
                work.service,
                head.connection_id,
                self._policy.app_keys.get(work.service, ""),
                share=str(work.user_id),
                account=account,
            )
        slot = await self._pacer.reserve(keys, MAX_INLINE_WAIT)
        if not slot.taken:
            # Nothing was spent: work put back never pushes later callers further out.
            if work.kind is WorkKind.NOW_PLAYING:
                # Later it would say "playing" about something long over: drop it.
                reason = "now playing skipped: the service's rate limit left no room"
                await self._recorder.apply(head, Failed(reason))
                raise _Rescheduled
            reason = "paced under the service's rate limit"
            if slot.turn:
                reason = "paced: waiting for its turn at the service's limit shared by all users"
            async with self._pool.acquire() as conn:
                await repository.put_off(conn, [row.id for row in rows], slot.at, reason)
            raise _Rescheduled
        return await call_on_slot(
            self._pool,
            self._http[work.service],
            slot,
            keys,
            request,
            service=work.service,
            endpoint=endpoint or work.kind.value,
            wait_before_next_s=client.wait_before_next_s,
        )

    async def waiting_connections(
        self, service: str, connection_ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        """The connections with work waiting its turn (``repository.waiting_connections``)."""
        async with self._pool.acquire() as conn:
            return await repository.waiting_connections(conn, service, connection_ids)

    async def put_back(self, scrobble_ids: Sequence[uuid.UUID], reason: str) -> None:
        """Leave queued rows to the due-work poller, behind their connection's work waiting
        its turn (``repository.put_back``)."""
        async with self._pool.acquire() as conn:
            await repository.put_back(conn, scrobble_ids, reason)

    async def skip_now_playing(self, claimed: repository.Claimed, reason: str) -> str:
        """Drop claimed now-playing work unsent (best effort: failed, never retried)."""
        return await self._recorder.apply(claimed, Failed(reason))

    # --- backlogs: several scrobbles of one connection in one call ------------------------

    def batch_limit(self, claimed: repository.Claimed) -> int:
        """How many works like this one may share a call: Last.fm takes 50 scrobbles in one
        ``track.scrobble``, ListenBrainz a backlog as one ``import``; everything else 1."""
        return self.call_size(claimed.service, claimed.kind)

    def call_size(self, service: str, kind: str) -> int:
        """:meth:`batch_limit` of work of this service and kind."""
        if kind != WorkKind.SCROBBLE.value:
            return 1
        return tracker(service).batch_size

    async def deliver_many(self, batch: Sequence[repository.Claimed]) -> list[str]:
        """Deliver claimed scrobbles of one connection, in order, in as few calls as the
        service allows (see :meth:`batch_limit`); returns an outcome label per work.

        Same policy as :meth:`deliver`, work by work: a work that cannot be sent is dead on
        its own and the rest still go; Last.fm answers item by item; a ListenBrainz import's
        answer applies to each of its works. A connection that is not plainly usable
        (disabled, no token, needs reconnect) goes the one-by-one way, which knows what to
        do with each case."""
        if len(batch) <= 1 or any(self._may_repeat(claimed) for claimed in batch):
            return [await self.deliver(claimed) for claimed in batch]
        head = batch[0]
        with logs.bound(
            scrobble_ids=",".join(str(c.id) for c in batch),
            connection_id=head.connection_id,
            service=head.service,
        ):
            try:
                return await self._deliver_many(batch)
            except Exception as exc:
                if is_transient(exc):
                    raise
                return await self._broken(batch, exc)

    async def _deliver_many(self, batch: Sequence[repository.Claimed]) -> list[str]:
        head = batch[0]
        client = self._clients[head.service]
        state = await self._db.state(head.connection_id)
        if state is None or not state.enabled or state.status != "active" or state.token is None:
            return [await self.deliver(claimed) for claimed in batch]
        user = UserCredentials(state.token, state.account_name, state.api_url)
        labels: dict[uuid.UUID, str] = {}
        rows: list[repository.Claimed] = []
        works: list[ScrobbleWork] = []
        for claimed in batch:
            try:
                work = ScrobbleWork.from_message(claimed.request)
            except Exception as exc:  # one unreadable row: dead on its own, the rest go
                if is_transient(exc):
                    raise
                [labels[claimed.id]] = await self._broken([claimed], exc)
                continue
            try:
                client.build(work, user)
            except Unsendable as exc:
                labels[claimed.id] = await self._record(claimed, work, Dead(str(exc)))
                continue
            rows.append(claimed)
            works.append(work)
        if rows:
            labels.update(await self._send_together(client, works, rows, user))
        return [labels[claimed.id] for claimed in batch]

    async def _send_together(
        self,
        client: ServiceClient,
        works: list[ScrobbleWork],
        rows: list[repository.Claimed],
        user: UserCredentials,
    ) -> dict[uuid.UUID, str]:
        """One call for ``rows``, each outcome applied; labels by row id."""
        try:
            outcomes = await self._send_batch(client, works, rows, user)
        except _Rescheduled:
            return {claimed.id: "paced" for claimed in rows}
        except ValueError:  # too large together: each goes on its own
            return {claimed.id: await self.deliver(claimed) for claimed in rows}
        return {
            claimed.id: await self._apply(claimed, work, outcome)
            for claimed, work, outcome in zip(rows, works, outcomes, strict=True)
        }

    async def _send_batch(
        self,
        client: ServiceClient,
        works: list[ScrobbleWork],
        rows: list[repository.Claimed],
        user: UserCredentials,
    ) -> list[Outcome]:
        if tracker(client.service).batch_size <= 1 or not isinstance(client, BatchingClient):
            raise ValueError(f"{client.service} takes no batches")
        request = client.build_batch(works, user)
        sent = await self._paced_send(client, works[0], rows, request, endpoint="batch", user=user)
        if isinstance(sent, Outcome):
            return [sent] * len(works)
        outcomes = client.classify_batch(works, sent)
        secrets = request.secrets()
        return [outcome.scrubbed(secrets) for outcome in outcomes]

    async def _apply(
        self, claimed: repository.Claimed, work: ScrobbleWork, outcome: Outcome
    ) -> str:
        """Record what ``decide`` makes of the call's outcome."""
        facts = WorkFacts(work.kind, claimed.attempts, claimed.queued_at, claimed.connection_id)
        return await self._record(
            claimed, work, decide(outcome, facts, self._policy, datetime.now(UTC))
        )


def _kind_of(claimed: repository.Claimed) -> WorkKind:
    """The kind of work a row says it is (a scrobble if it says something unknown)."""
    try:
        return WorkKind(claimed.kind)
    except ValueError:
        return WorkKind.SCROBBLE


class _Rescheduled(Exception):
    """The work was put back for later (pacing), or dropped as stale now playing; its row
    is already recorded."""
