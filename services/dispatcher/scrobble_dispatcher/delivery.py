"""Delivering one claimed piece of work: pace, send, classify, record. The failure policy
of the dispatcher lives here.

- DONE / ALREADY_DONE: sent.
- Now playing that is not done: failed, never retried, never dead (best effort).
- RETRY (and transport failures): again after max(growing backoff, the service's wait), up
  to ``max_retries`` attempts; then dead.
- Rate-limited (a RETRY the service asked for: 429, Last.fm error 29): pacing, not failure.
  The work waits what the service said (``RATE_LIMIT_WAIT`` when it said nothing) plus a
  jitter of up to a tenth of that (at least ``RATE_LIMIT_JITTER``), fixed per connection so
  a connection's work comes back together; no attempt is spent and it is counted apart
  (``scrobble_rate_limited_total``). The bound: work still rate-limited
  ``DeliveryPolicy.rate_limited_for`` (24 h) after it was queued is dead, so a service
  that only ever answers 429 ends the work after that long.
- REFRESH (services with a refresh config, Trakt): the tokens are refreshed once, the new
  pair persisted before it is used (tokens.py: in-flight mark, compare-and-set), and the
  work is sent again once with it. Tokens whose ``token_expires_at`` has passed are
  refreshed before the call. A refresh in flight elsewhere makes the work wait shortly; an
  interrupted one is tried once more and, when the service had spent it, ends as below with
  "a token refresh was interrupted; reconnect Trakt".
- RECONNECT, a refused refresh, or REFRESH without a way to refresh: the connection is
  marked as needing reconnect (visible in the API, with the reason) and the work waits,
  rescheduled an hour ahead, instead of dying (now playing: failed, as always).
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
  (``recheck.py``, paced on its read limits); what it holds already is sent (ALREADY_DONE),
  an answer that says nothing is retried like a failed write. A backlog that holds such
  work goes one by one.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from scrobble_dispatcher import metrics, pacing, repository, tokens
from scrobble_dispatcher.clients.anilist import (
    AniListClient,
    MediaLookupNeeded,
    anilist_media_id,
    episode_progress,
    parse_current_entry,
    parse_media_lookup,
    progress_to_save,
)
from scrobble_dispatcher.clients.base import (
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    ServiceClient,
    Unsendable,
    UserCredentials,
    retry_after_s,
)
from scrobble_dispatcher.clients.lastfm import MAX_BATCH as LASTFM_MAX_BATCH
from scrobble_dispatcher.clients.lastfm import LastfmClient
from scrobble_dispatcher.clients.listenbrainz import ListenBrainzClient
from scrobble_dispatcher.paced_call import call_on_slot
from scrobble_dispatcher.recheck import NoAnswer, Recheck
from scrobble_dispatcher.resolve.resolver import (
    UNRESOLVED,
    IdResolver,
    ItemUnresolved,
    LookupInProgress,
)
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
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

log = logging.getLogger(__name__)

# Longer than the spacing of a multi-step delivery (AniList: lookup, read, save at 2 s
# apart per token), or such work would be put back before its last step, forever.
MAX_INLINE_WAIT: Final = timedelta(seconds=5)
RECONNECT_WAIT: Final = timedelta(hours=1)
LOOKUP_BUSY_WAIT: Final = timedelta(seconds=2)
# Listens per ListenBrainz import from a backlog: far under its 1,000, so the claims of one
# call stay short-lived and one bad answer touches few rows.
LISTENBRAINZ_BATCH: Final = 100


# How long rate-limited work may go on waiting, counted from when it was queued.
RATE_LIMITED_FOR: Final = timedelta(hours=24)
# The wait after a rate-limit answer that says nothing of how long (Last.fm's default too).
RATE_LIMIT_WAIT: Final = timedelta(seconds=10)
# The least spread of the jitter added to a rate-limit wait.
RATE_LIMIT_JITTER: Final = timedelta(seconds=1)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_retries: int
    retry_backoff: timedelta
    dead_letter_prefix: str  # '<prefix><service>.dlq'
    app_keys: dict[str, str]  # service -> app id used in pacing keys
    rate_limited_for: timedelta = RATE_LIMITED_FOR


def backoff(policy: DeliveryPolicy, attempts: int) -> timedelta:
    """Growing with each attempt: backoff, 2x, 4x ..."""
    return policy.retry_backoff * (1 << max(attempts - 1, 0))


def after_rate_limit(
    policy: DeliveryPolicy,
    outcome: Outcome,
    queued_at: datetime,
    now: datetime,
    jitter: float,
) -> datetime | None:
    """When rate-limited work goes again: after what the service said to wait (or
    ``RATE_LIMIT_WAIT``), plus ``jitter`` (0 to 1) of a tenth of that wait (at least of
    ``RATE_LIMIT_JITTER``). None once the work was queued ``policy.rate_limited_for`` ago
    or more: it has waited long enough, and is dead."""
    if now - queued_at >= policy.rate_limited_for:
        return None
    said = outcome.retry_after_s
    wait = RATE_LIMIT_WAIT if said is None else timedelta(seconds=said)
    return now + wait + max(wait / 10, RATE_LIMIT_JITTER) * jitter


def connection_jitter(connection_id: uuid.UUID) -> float:
    """A fraction (0 to 1) fixed per connection: its rate-limited work comes back together
    (and can go in one call again), different connections' at different moments."""
    # The low bits of a (random) connection id: spread, not secrecy.
    return connection_id.int % 1000 / 1000


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
        self._relay = relay
        self._policy = policy

    async def claim(self, scrobble_id: uuid.UUID) -> repository.Claimed | None:
        """Take a row for sending (``repository.claim``, coalesced with other deliveries)."""
        return await self._db.claim(scrobble_id)

    async def deliver(self, claimed: repository.Claimed) -> str:
        """Send one claimed row and record what became of it; returns the outcome label."""
        with logs.bound(
            scrobble_id=claimed.id, connection_id=claimed.connection_id, service=claimed.service
        ):
            return await self._deliver(claimed)

    async def _deliver(self, claimed: repository.Claimed) -> str:
        work = ScrobbleWork.from_message(claimed.request)
        state = await self._db.state(claimed.connection_id)
        if state is not None and state.enabled and state.unreadable:
            return await self._unreadable(claimed, work)
        if state is None or not state.enabled or state.token is None:
            why = "connection disabled" if state and not state.enabled else "no token stored"
            return await self._dead(claimed, work, f"{work.service}: {why}", None)
        if state.status == "needs_reconnect":
            if state.status_reason != UNREADABLE_TOKENS_REASON:
                return await self._wait_for_reconnect(claimed, "connection needs reconnecting")
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
            user = UserCredentials(state.token, state.account_name)
            outcome = await self._send(work, claimed, user)
            if outcome.kind is OutcomeKind.REFRESH and config is not None:
                ready = await self._usable_token(claimed, work, state, config, state.tokens.version)
                if isinstance(ready, str):
                    return ready
                assert ready.token is not None
                # Once: a second refusal is handled by _apply (needs reconnect).
                user = UserCredentials(ready.token, ready.account_name)
                outcome = await self._send(work, claimed, user)
        except Unsendable as exc:
            outcome = Outcome.permanent(str(exc))
        except _Rescheduled:
            return "paced"
        except ItemUnresolved as exc:
            return await self._unresolved(claimed, work, str(exc))
        except LookupInProgress as exc:
            return await self._hold(claimed, work, datetime.now(UTC) + LOOKUP_BUSY_WAIT, str(exc))
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
        return await self._hold(claimed, work, at, ready.reason)

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
        return await self._hold(claimed, work, at, UNREADABLE_TOKENS_REASON)

    async def _hold(
        self, claimed: repository.Claimed, work: ScrobbleWork, at: datetime, reason: str
    ) -> str:
        """Put the work back until ``at`` without counting an attempt; now playing, being
        best effort and never retried, fails instead."""
        if work.kind is WorkKind.NOW_PLAYING:
            await self._db.failed((claimed.id, reason, None))
            metrics.NOW_PLAYING_FAILED.labels(work.service).inc()
            return "failed"
        await self._reschedule(claimed, at, reason)
        return "waiting"

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
        if isinstance(client, AniListClient):
            return await self._send_anilist(client, work, claimed, user)
        return await self._call(client, work, claimed, client.build(work, user), user)

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
        name = None
        if work.service == "lastfm":
            async with self._pool.acquire() as conn:
                name = await conn.fetchval(
                    "SELECT external_user_name FROM connections WHERE id = $1",
                    claimed.connection_id,
                )
        request = check.build(work, user, name)
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

    async def _call(
        self,
        client: ServiceClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        request: HttpRequest,
        user: UserCredentials | None = None,
    ) -> Outcome:
        return (await self._exchange(client, work, claimed, request, user=user))[0]

    async def _exchange(
        self,
        client: ServiceClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        request: HttpRequest,
        *,
        keys: list[pacing.PaceKey] | None = None,
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
        keys: list[pacing.PaceKey] | None = None,
        endpoint: str | None = None,
        user: UserCredentials | None = None,
    ) -> HttpResponse | Outcome:
        """Wait for the pacing slot (or put ``rows`` back for it), then send: the response,
        or the retry outcome of a call that got none. One call, one slot, however many
        works it carries. The write keys count what the service limits: the user's
        account or token (``pacing.limited_account``), else the connection."""
        head = rows[0]
        if keys is None:
            account = None
            if user is not None:
                account = pacing.limited_account(work.service, user.token, user.account)
            keys = pacing.pacing_keys(
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
                await self._db.failed((head.id, reason, None))
                metrics.NOW_PLAYING_FAILED.labels(work.service).inc()
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
        await self._db.failed((claimed.id, reason, None))
        metrics.NOW_PLAYING_FAILED.labels(claimed.service).inc()
        return "failed"

    # --- backlogs: several scrobbles of one connection in one call ------------------------

    def batch_limit(self, claimed: repository.Claimed) -> int:
        """How many works like this one may share a call: Last.fm takes 50 scrobbles in one
        ``track.scrobble``, ListenBrainz a backlog as one ``import``; everything else 1."""
        return self.call_size(claimed.service, claimed.kind)

    def call_size(self, service: str, kind: str) -> int:
        """:meth:`batch_limit` of work of this service and kind."""
        if kind != WorkKind.SCROBBLE.value:
            return 1
        client = self._clients.get(service)
        if isinstance(client, LastfmClient):
            return LASTFM_MAX_BATCH
        if isinstance(client, ListenBrainzClient):
            return LISTENBRAINZ_BATCH
        return 1

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
            return await self._deliver_many(batch)

    async def _deliver_many(self, batch: Sequence[repository.Claimed]) -> list[str]:
        head = batch[0]
        client = self._clients[head.service]
        state = await self._db.state(head.connection_id)
        if state is None or not state.enabled or state.status != "active" or state.token is None:
            return [await self.deliver(claimed) for claimed in batch]
        user = UserCredentials(state.token, state.account_name)
        labels: dict[uuid.UUID, str] = {}
        rows: list[repository.Claimed] = []
        works: list[ScrobbleWork] = []
        for claimed in batch:
            work = ScrobbleWork.from_message(claimed.request)
            try:
                client.build(work, user)
            except Unsendable as exc:
                labels[claimed.id] = await self._dead(claimed, work, str(exc), None)
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
        if isinstance(client, LastfmClient):
            request, endpoint = client.build_batch(works, user), "scrobble_batch"
        elif isinstance(client, ListenBrainzClient):
            request, endpoint = client.build_import(works, user), "import"
        else:
            raise ValueError(f"{client.service} takes no batches")
        sent = await self._paced_send(client, works[0], rows, request, endpoint=endpoint, user=user)
        if isinstance(sent, Outcome):
            return [sent] * len(works)
        if isinstance(client, LastfmClient):
            outcomes = client.classify_batch(works, sent)
        else:
            outcomes = [client.classify(work, sent) for work in works]
        secrets = request.secrets()
        return [outcome.scrubbed(secrets) for outcome in outcomes]

    async def _send_anilist(
        self,
        client: AniListClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        user: UserCredentials,
    ) -> Outcome:
        found = await self._anilist_media_id(client, work, claimed, user)
        if isinstance(found, Outcome):
            return found
        media_id = found
        if work.kind is WorkKind.WATCHED:
            read = client.build_current_entry(media_id, user)
            outcome, response = await self._exchange(client, work, claimed, read)
            if outcome.kind is not OutcomeKind.DONE or response is None:
                return outcome
            entry = parse_current_entry(response)
            wanted = episode_progress(work)
            if progress_to_save(entry.progress if entry else None, wanted) is None:
                return Outcome.already_done("AniList already has this episode or a later one")
            save = client.build_save_progress(work, media_id, user, entry.status if entry else None)
            return await self._call(client, work, claimed, save)
        return await self._call(
            client, work, claimed, client.build_save_score(work, media_id, user)
        )

    async def _anilist_media_id(
        self,
        client: AniListClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        user: UserCredentials,
    ) -> int | Outcome:
        """The AniList id of the item: from its ids, or looked up by its MyAnimeList id."""
        media_id = anilist_media_id(work.content)
        if media_id is not None:
            return media_id
        try:
            client.build(work, user)
        except MediaLookupNeeded as needed:
            lookup = client.build_media_lookup(needed.mal_id, user)
            outcome, response = await self._exchange(client, work, claimed, lookup)
            not_found = f"not found at AniList: MyAnimeList id {needed.mal_id}"
            if outcome.kind is OutcomeKind.PERMANENT:
                return Outcome.permanent(not_found, outcome.http_status)
            if outcome.kind is not OutcomeKind.DONE or response is None:
                return outcome
            found = parse_media_lookup(response)
            return Outcome.permanent(not_found) if found is None else found
        raise Unsendable("AniList work without an AniList id needs a MyAnimeList id")

    async def _apply(
        self, claimed: repository.Claimed, work: ScrobbleWork, outcome: Outcome
    ) -> str:
        service, kind = work.service, outcome.kind
        if kind in (OutcomeKind.DONE, OutcomeKind.ALREADY_DONE):
            await self._db.sent((claimed.id, outcome.http_status))
            metrics.SENT.labels(service, kind.value).inc()
            metrics.DELAY.labels(service).observe(
                (datetime.now(UTC) - work.occurred_at).total_seconds()
            )
            return kind.value
        if work.kind is WorkKind.NOW_PLAYING:
            await self._db.failed((claimed.id, outcome.reason, outcome.http_status))
            metrics.NOW_PLAYING_FAILED.labels(service).inc()
            return "failed"
        if kind in (OutcomeKind.REFRESH, OutcomeKind.RECONNECT):
            async with self._pool.acquire() as conn:
                await repository.mark_needs_reconnect(conn, claimed.connection_id, outcome.reason)
            return await self._wait_for_reconnect(claimed, outcome.reason)
        if kind is OutcomeKind.RETRY and outcome.rate_limited:
            return await self._rate_limited(claimed, work, outcome)
        if kind is OutcomeKind.RETRY and claimed.attempts <= self._policy.max_retries:
            delay = backoff(self._policy, claimed.attempts)
            if outcome.retry_after_s is not None:
                delay = max(delay, timedelta(seconds=outcome.retry_after_s))
            async with self._pool.acquire() as conn:
                await repository.record_retry(
                    conn,
                    claimed.id,
                    datetime.now(UTC) + delay,
                    outcome.reason,
                    outcome.http_status,
                )
            metrics.RETRIED.labels(service).inc()
            return "retry"
        reason = outcome.reason
        if kind is OutcomeKind.RETRY:
            reason = f"gave up after {claimed.attempts} attempts: {reason}"
        return await self._dead(claimed, work, reason, outcome.http_status)

    async def _rate_limited(
        self, claimed: repository.Claimed, work: ScrobbleWork, outcome: Outcome
    ) -> str:
        """The service said to slow down: wait what it said, spending no attempt; dead only
        past the policy's bound (:func:`after_rate_limit`)."""
        metrics.RATE_LIMITED.labels(work.service).inc()
        now = datetime.now(UTC)
        jitter = connection_jitter(claimed.connection_id)
        at = after_rate_limit(self._policy, outcome, claimed.queued_at, now, jitter)
        if at is None:
            waited = self._policy.rate_limited_for
            reason = f"still rate-limited {waited} after it was queued: {outcome.reason}"
            return await self._dead(claimed, work, reason, outcome.http_status)
        async with self._pool.acquire() as conn:
            await repository.record_retry(
                conn, claimed.id, at, outcome.reason, outcome.http_status, count_attempt=False
            )
        return "rate_limited"

    async def _dead(
        self, claimed: repository.Claimed, work: ScrobbleWork, reason: str, status: int | None
    ) -> str:
        topic = f"{self._policy.dead_letter_prefix}{work.service}.dlq"
        if work.kind is WorkKind.NOW_PLAYING:
            await self._db.failed((claimed.id, reason, status))
            return "failed"
        async with self._pool.acquire() as conn:
            ids = await repository.record_dead(conn, claimed, reason, status, topic)
        await self._relay.publish(ids)
        metrics.DEAD.labels(work.service).inc()
        log.info("dead: %s %s (%s)", work.service, claimed.id, reason)
        return "dead"

    async def _unresolved(
        self, claimed: repository.Claimed, work: ScrobbleWork, reason: str
    ) -> str:
        """The service cannot name the item: failed for good, with the reason in history."""
        await self._db.failed((claimed.id, reason, None))
        UNRESOLVED.labels(work.service).inc()
        log.info("unresolved: %s %s (%s)", work.service, claimed.id, reason)
        return "unresolved"

    async def _wait_for_reconnect(self, claimed: repository.Claimed, reason: str) -> str:
        await self._reschedule(claimed, datetime.now(UTC) + RECONNECT_WAIT, reason)
        return "waiting"

    async def _reschedule(self, claimed: repository.Claimed, at: datetime, reason: str) -> None:
        async with self._pool.acquire() as conn:
            await repository.record_retry(conn, claimed.id, at, reason, None, count_attempt=False)


class _Rescheduled(Exception):
    """The work was put back for later (pacing), or dropped as stale now playing; its row
    is already recorded."""
