"""Resolving one piece of work before it is sent: walk the service's plan, asking the
shared cache before the service, and hand back the work with the ids its service needs.

Failure policy (the dispatcher maps these; see delivery.py):

- resolved (or nothing to resolve: music, whose names are enough): the work, to send;
- :class:`ItemUnresolved`: no step named the item (no usable id, every lookup "not found",
  or an inexact search): a permanent, readable outcome, recorded ``failed``, never retried;
- :class:`LookupInProgress`: another replica is asking about this item right now and did
  not answer within ``busy_wait``: the work waits a moment without spending an attempt;
- an :class:`~scrobble_shared.trackers.http.Outcome` from a lookup call that got no
  usable answer (429, 5xx, timeout, refused token): handled like the same outcome of a
  write; the claim is given up so the next play asks again. Pacing that reschedules the
  work (``_Rescheduled`` from the exchange) also gives the claim up and propagates.

In front of Postgres sits a small in-process cache of answers (``local_ttl``), and one
lookup per key at a time within the process, so concurrent plays of one item wait for the
first instead of polling the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Final
from uuid import UUID

import asyncpg
from prometheus_client import Counter

from scrobble_dispatcher.resolve import cache
from scrobble_shared.trackers.http import (
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    UserCredentials,
)
from scrobble_shared.trackers.ids import (
    Found,
    Lookup,
    LookupResult,
    NotFound,
    Ready,
    ServiceResolver,
    UnexpectedAnswer,
    with_ids,
)
from scrobble_shared.trackers.pace import PaceKey
from scrobble_shared.work_message import ScrobbleWork

log = logging.getLogger(__name__)

FOUND_TTL: Final = timedelta(days=7)
# Shorter: the service may add the item later.
NOT_FOUND_TTL: Final = timedelta(hours=12)
# Longer than a lookup can take: a paced wait (MAX_INLINE_WAIT) plus the HTTP timeout.
CLAIM_LEASE: Final = timedelta(seconds=30)
BUSY_WAIT_S: Final = 5.0
BUSY_POLL_S: Final = 0.1
LOCAL_TTL_S: Final = 300.0
LOCAL_MAX: Final = 10_000

LOOKUPS = Counter(
    "scrobble_id_lookups_total",
    "External-id resolution by service and where the answer came from",
    ["service", "outcome"],
)
UNRESOLVED = Counter(
    "scrobble_scrobbles_unresolved_total",
    "Work failed because its service could not name the item",
    ["service"],
)

# Pace, send and classify one lookup request (the dispatcher's exchange, on these keys).
Exchange = Callable[[HttpRequest, list[PaceKey]], Awaitable[tuple[Outcome, HttpResponse | None]]]


class ItemUnresolved(Exception):
    """The service cannot name this item; the message is the reason for history."""


class LookupInProgress(Exception):
    """Another process is looking this item up; try the work again shortly."""


class IdResolver:
    def __init__(
        self,
        pool: asyncpg.Pool,
        resolvers: Mapping[str, ServiceResolver],
        app_keys: Mapping[str, str] | None = None,
        *,
        found_ttl: timedelta = FOUND_TTL,
        not_found_ttl: timedelta = NOT_FOUND_TTL,
        lease: timedelta = CLAIM_LEASE,
        busy_wait_s: float = BUSY_WAIT_S,
        local_ttl_s: float = LOCAL_TTL_S,
    ) -> None:
        self._pool = pool
        self._resolvers = dict(resolvers)
        self._app_keys = dict(app_keys or {})
        self._found_ttl = found_ttl
        self._not_found_ttl = not_found_ttl
        self._lease = lease
        self._busy_wait_s = busy_wait_s
        self._local_ttl_s = local_ttl_s
        self._local: OrderedDict[tuple[str, str], tuple[float, LookupResult]] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def resolve(
        self,
        work: ScrobbleWork,
        connection_id: UUID,
        user: UserCredentials,
        exchange: Exchange,
    ) -> ScrobbleWork | Outcome:
        """The work with the ids its service needs, or the outcome of a failed lookup call;
        raises :class:`ItemUnresolved` or :class:`LookupInProgress` (module docstring)."""
        resolver = self._resolvers.get(work.service)
        if resolver is None:
            return work  # Last.fm and ListenBrainz take artist and track names
        plan = resolver.plan(work.content)
        said: list[str] = []
        for step in plan.steps:
            if isinstance(step, Ready):
                return work
            answer = await self._answer(resolver, step, connection_id, user, exchange)
            if isinstance(answer, Outcome):
                return answer
            if isinstance(answer, Found):
                return replace(work, content=with_ids(work.content, step.target, answer.ids))
            if step.kind == "id" or answer.reason != step.describe():
                said.append(answer.reason)  # the plan's reason already says "no exact match"
        reason = plan.unresolved
        extra = [s for s in said if s not in reason]
        if extra:
            reason = f"{reason} ({'; '.join(extra)})"
        raise ItemUnresolved(reason)

    async def _answer(
        self,
        resolver: ServiceResolver,
        lookup: Lookup,
        connection_id: UUID,
        user: UserCredentials,
        exchange: Exchange,
    ) -> LookupResult | Outcome:
        name = (resolver.service, lookup.key)
        known = self._remembered_here(name)
        if known is not None:
            return known
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            async with lock:
                known = self._remembered_here(name)
                if known is not None:
                    return known
                return await self._shared_answer(resolver, lookup, connection_id, user, exchange)
        finally:
            if not lock.locked():
                self._locks.pop(name, None)

    async def _shared_answer(
        self,
        resolver: ServiceResolver,
        lookup: Lookup,
        connection_id: UUID,
        user: UserCredentials,
        exchange: Exchange,
    ) -> LookupResult | Outcome:
        service = resolver.service
        loop = asyncio.get_running_loop()
        until = loop.time() + self._busy_wait_s
        while True:
            async with self._pool.acquire() as conn:
                state = await cache.read_or_claim(conn, service, lookup.key, self._lease)
            if isinstance(state, cache.Cached):
                LOOKUPS.labels(service, "cached").inc()
                self._remember((service, lookup.key), state.result)
                return state.result
            if isinstance(state, cache.Claimed):
                break
            if loop.time() >= until:
                raise LookupInProgress(f"{resolver.label} lookup of this item in progress")
            await asyncio.sleep(BUSY_POLL_S)
        claim = state.claim
        try:
            request = resolver.build(lookup, user)
            keys = resolver.pacing_keys(connection_id, self._app_keys.get(service, ""))
            outcome, response = await exchange(request, keys)
            result = _read(resolver, lookup, outcome, response)
        except BaseException:
            await self._release(service, lookup.key, claim)
            raise
        if isinstance(result, Outcome):
            LOOKUPS.labels(service, "failed").inc()
            await self._release(service, lookup.key, claim)
            return result
        ttl = self._found_ttl if isinstance(result, Found) else self._not_found_ttl
        async with self._pool.acquire() as conn:
            await cache.store(conn, service, lookup.key, claim, result, ttl)
        LOOKUPS.labels(service, "found" if isinstance(result, Found) else "not_found").inc()
        log.info("%s lookup %s: %s", service, lookup.key, result)
        self._remember((service, lookup.key), result)
        return result

    async def _release(self, service: str, key: str, claim: UUID) -> None:
        try:
            async with self._pool.acquire() as conn:
                await cache.release(conn, service, key, claim)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The lease runs out by itself; the next play asks again then.
            log.warning("could not release the %s lookup claim on %s: %s", service, key, exc)

    def _remembered(self, name: tuple[str, str]) -> LookupResult | None:
        entry = self._local.get(name)
        if entry is None:
            return None
        if entry[0] < asyncio.get_running_loop().time():
            del self._local[name]
            return None
        return entry[1]

    def _remembered_here(self, name: tuple[str, str]) -> LookupResult | None:
        """What this process remembers of the lookup ``name``, counted as a local hit."""
        known = self._remembered(name)
        if known is not None:
            LOOKUPS.labels(name[0], "cached_local").inc()
        return known

    def _remember(self, name: tuple[str, str], result: LookupResult) -> None:
        self._local[name] = (asyncio.get_running_loop().time() + self._local_ttl_s, result)
        self._local.move_to_end(name)
        while len(self._local) > LOCAL_MAX:
            self._local.popitem(last=False)


def _read(
    resolver: ServiceResolver,
    lookup: Lookup,
    outcome: Outcome,
    response: HttpResponse | None,
) -> LookupResult | Outcome:
    """What a lookup's answer says: a result to cache, or an outcome that is not one."""
    if outcome.kind is OutcomeKind.DONE and response is not None:
        try:
            return resolver.parse(lookup, response)
        except UnexpectedAnswer as exc:
            return Outcome.retry(f"{resolver.label} lookup answer unreadable: {exc}")
    if outcome.kind is OutcomeKind.PERMANENT and outcome.http_status == 404:
        return NotFound(lookup.describe())
    return outcome
