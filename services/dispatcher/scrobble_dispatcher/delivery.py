"""Delivering one claimed piece of work: pace, send, classify, record. The failure policy
of the dispatcher lives here.

- DONE / ALREADY_DONE: sent.
- Now playing that is not done: failed, never retried, never dead (best effort).
- RETRY (and transport failures): again after max(growing backoff, the service's wait), up
  to ``max_retries`` attempts; then dead.
- REFRESH / RECONNECT: the connection is marked as needing reconnect (visible in the API)
  and the work waits, rescheduled an hour ahead, instead of dying. Refreshing Trakt tokens
  is still to come (issue 5); until then a 401 waits for a reconnect.
- PERMANENT (and work that cannot become a request): dead with its reason, on the
  dead-letter topic and in history.
- Pacing: the next free slot comes from Postgres (shared by all replicas); a slot more than
  ``MAX_INLINE_WAIT`` away reschedules the work for then rather than holding the consumer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg
import httpx

from scrobble_dispatcher import metrics, pacing, repository
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
    ScrobbleWork,
    ServiceClient,
    Unsendable,
    UserCredentials,
)
from scrobble_dispatcher.transport import TransportFailure, send
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.work import WorkKind

log = logging.getLogger(__name__)

# Longer than the spacing of a multi-step delivery (AniList: lookup, read, save at 2 s
# apart per token), or such work would be put back before its last step, forever.
MAX_INLINE_WAIT: Final = timedelta(seconds=5)
RECONNECT_WAIT: Final = timedelta(hours=1)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_retries: int
    retry_backoff: timedelta
    dead_letter_prefix: str  # '<prefix><service>.dlq'
    app_keys: dict[str, str]  # service -> app id used in pacing keys


def backoff(policy: DeliveryPolicy, attempts: int) -> timedelta:
    """Growing with each attempt: backoff, 2x, 4x ..."""
    return policy.retry_backoff * (1 << max(attempts - 1, 0))


class Deliverer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        clients: dict[str, ServiceClient],
        http: dict[str, httpx.AsyncClient],
        relay: OutboxRelay,
        policy: DeliveryPolicy,
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._clients = clients
        self._http = http
        self._relay = relay
        self._policy = policy

    async def deliver(self, claimed: repository.Claimed) -> str:
        """Send one claimed row and record what became of it; returns the outcome label."""
        work = ScrobbleWork.from_message(claimed.request)
        async with self._pool.acquire() as conn:
            state = await repository.connection_state(conn, self._cipher, claimed.connection_id)
        if state is None or not state.enabled or state.token is None:
            why = "connection disabled" if state and not state.enabled else "no token stored"
            return await self._dead(claimed, work, f"{work.service}: {why}", None)
        if state.status == "needs_reconnect":
            return await self._wait_for_reconnect(claimed, "connection needs reconnecting")
        user = UserCredentials(state.token)
        try:
            outcome = await self._send(work, claimed, user)
        except Unsendable as exc:
            outcome = Outcome.permanent(str(exc))
        except _Rescheduled:
            return "paced"
        return await self._apply(claimed, work, outcome)

    async def _send(
        self, work: ScrobbleWork, claimed: repository.Claimed, user: UserCredentials
    ) -> Outcome:
        client = self._clients[work.service]
        if isinstance(client, AniListClient):
            return await self._send_anilist(client, work, claimed, user)
        return await self._call(client, work, claimed, client.build(work, user))

    async def _call(
        self,
        client: ServiceClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        request: HttpRequest,
    ) -> Outcome:
        return (await self._exchange(client, work, claimed, request))[0]

    async def _exchange(
        self,
        client: ServiceClient,
        work: ScrobbleWork,
        claimed: repository.Claimed,
        request: HttpRequest,
    ) -> tuple[Outcome, HttpResponse | None]:
        """Pace, send, classify; the response too, for steps that read it."""
        keys = pacing.pacing_keys(
            work.service, claimed.connection_id, self._policy.app_keys.get(work.service, "")
        )
        async with self._pool.acquire() as conn:
            slot = await pacing.reserve_all(conn, keys)
        wait = slot - datetime.now(UTC)
        if wait > MAX_INLINE_WAIT:
            await self._reschedule(claimed, slot, "paced under the service's rate limit")
            raise _Rescheduled
        if wait.total_seconds() > 0:
            metrics.RATE_LIMIT_WAIT.labels(work.service).observe(wait.total_seconds())
            await asyncio.sleep(wait.total_seconds())
        started = asyncio.get_running_loop().time()
        try:
            response = await send(self._http[work.service], request)
        except TransportFailure as exc:
            return Outcome.retry(str(exc)), None
        finally:
            metrics.REQUEST_SECONDS.labels(work.service, work.kind.value).observe(
                asyncio.get_running_loop().time() - started
            )
        hold_s = client.wait_before_next_s(response)
        if hold_s:
            until = datetime.now(UTC) + timedelta(seconds=hold_s)
            async with self._pool.acquire() as conn:
                for key in keys:
                    await pacing.hold(conn, key.key, until)
        return client.classify(work, response), response

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
        async with self._pool.acquire() as conn:
            if kind in (OutcomeKind.DONE, OutcomeKind.ALREADY_DONE):
                await repository.record_sent(conn, claimed.id, outcome.http_status)
                metrics.SENT.labels(service, kind.value).inc()
                metrics.DELAY.labels(service).observe(
                    (datetime.now(UTC) - work.occurred_at).total_seconds()
                )
                return kind.value
            if work.kind is WorkKind.NOW_PLAYING:
                await repository.record_failed(
                    conn, claimed.id, outcome.reason, outcome.http_status
                )
                metrics.NOW_PLAYING_FAILED.labels(service).inc()
                return "failed"
            if kind in (OutcomeKind.REFRESH, OutcomeKind.RECONNECT):
                await repository.mark_needs_reconnect(conn, claimed.connection_id, outcome.reason)
        if kind in (OutcomeKind.REFRESH, OutcomeKind.RECONNECT):
            return await self._wait_for_reconnect(claimed, outcome.reason)
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

    async def _dead(
        self, claimed: repository.Claimed, work: ScrobbleWork, reason: str, status: int | None
    ) -> str:
        topic = f"{self._policy.dead_letter_prefix}{work.service}.dlq"
        async with self._pool.acquire() as conn:
            if work.kind is WorkKind.NOW_PLAYING:
                await repository.record_failed(conn, claimed.id, reason, status)
                return "failed"
            ids = await repository.record_dead(conn, claimed, reason, status, topic)
        await self._relay.publish(ids)
        metrics.DEAD.labels(work.service).inc()
        log.info("dead: %s %s (%s)", work.service, claimed.id, reason)
        return "dead"

    async def _wait_for_reconnect(self, claimed: repository.Claimed, reason: str) -> str:
        await self._reschedule(claimed, datetime.now(UTC) + RECONNECT_WAIT, reason)
        return "waiting"

    async def _reschedule(self, claimed: repository.Claimed, at: datetime, reason: str) -> None:
        async with self._pool.acquire() as conn:
            await repository.record_retry(conn, claimed.id, at, reason, None, count_attempt=False)


class _Rescheduled(Exception):
    """The work was put back for later (pacing); nothing more to record."""
