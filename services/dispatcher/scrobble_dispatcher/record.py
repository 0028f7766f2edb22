"""Applying a decision (``decide.py``) to a claimed row: Postgres, the dead-letter topic
through the outbox, and the metrics. Decides nothing itself."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg

from scrobble_dispatcher import metrics, repository
from scrobble_dispatcher.decide import Dead, Decision, Failed, Hold, Retry, Sent
from scrobble_dispatcher.resolve.resolver import UNRESOLVED
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.work import WorkKind

log = logging.getLogger(__name__)


class Recorder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        db: repository.Coalesced,
        relay: OutboxRelay,
        dead_letter_prefix: str,
    ) -> None:
        self._pool = pool
        self._db = db
        self._relay = relay
        self._dead_letter_prefix = dead_letter_prefix

    async def apply(
        self,
        claimed: repository.Claimed,
        decision: Decision,
        occurred_at: datetime | None = None,
        *,
        only_if_sending: bool = False,
    ) -> str:
        """Record ``decision`` for ``claimed``; returns the outcome's label (``done``,
        ``retry``, ``rate_limited``, ``waiting``, ``failed``, ``unresolved``, ``dead``;
        ``unchanged`` when ``only_if_sending`` found the row recorded already).
        ``occurred_at``: when the play happened, for the delay of sent work.
        ``only_if_sending``: a dead row is written only if nothing recorded it yet."""
        service = claimed.service
        match decision:
            case Sent(kind, status):
                await self._db.sent((claimed.id, status))
                metrics.SENT.labels(service, kind.value).inc()
                if occurred_at is not None:
                    delay = datetime.now(UTC) - occurred_at
                    metrics.DELAY.labels(service).observe(delay.total_seconds())
                return kind.value
            case Retry(at, reason, status, counted):
                async with self._pool.acquire() as conn:
                    await repository.record_retry(
                        conn, claimed.id, at, reason, status, count_attempt=counted
                    )
                if not counted:
                    metrics.RATE_LIMITED.labels(service).inc()
                    return "rate_limited"
                metrics.RETRIED.labels(service).inc()
                return "retry"
            case Hold(at, reason, reconnect):
                async with self._pool.acquire() as conn:
                    if reconnect:
                        await repository.mark_needs_reconnect(conn, claimed.connection_id, reason)
                    await repository.record_retry(
                        conn, claimed.id, at, reason, None, count_attempt=False
                    )
                return "waiting"
            case Failed(reason, status, unresolved):
                await self._db.failed((claimed.id, reason, status))
                if unresolved:
                    UNRESOLVED.labels(service).inc()
                    log.info("unresolved: %s %s (%s)", service, claimed.id, reason)
                    return "unresolved"
                if claimed.kind == WorkKind.NOW_PLAYING.value:
                    metrics.NOW_PLAYING_FAILED.labels(service).inc()
                return "failed"
            case Dead(reason, status):
                topic = f"{self._dead_letter_prefix}{service}.dlq"
                async with self._pool.acquire() as conn:
                    ids = await repository.record_dead(
                        conn, claimed, reason, status, topic, only_if_sending=only_if_sending
                    )
                if not ids:  # recorded already (only_if_sending)
                    return "unchanged"
                await self._relay.publish(ids)
                metrics.DEAD.labels(service).inc()
                log.info("dead: %s %s (%s)", service, claimed.id, reason)
                return "dead"
