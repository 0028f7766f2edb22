"""The shared lookup cache in Postgres (table ``id_lookups``, migration 0005).

One row per service and question (:attr:`~scrobble_shared.trackers.ids.Lookup.key`):
``found`` with the ids, ``not_found`` with the reason, or ``pending`` while one replica
asks. :func:`read_or_claim` is the whole protocol: an answer still within its time to live
is returned; otherwise one atomic upsert claims the row (a new row, or one whose answer or
lease has run out), so of several replicas asking at once exactly one gets the claim and the
others see ``pending`` and wait. The claimant stores the answer with :func:`store` (only
while its claim is still the row's) or gives the claim up with :func:`release` when the
service could not answer (5xx, timeout, pacing), so the next play asks again.

Failure policy: database errors are raised to the caller, which treats them as transient.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from scrobble_shared.db import Conn
from scrobble_shared.trackers.ids import Found, LookupResult, NotFound


@dataclass(frozen=True)
class Cached:
    result: LookupResult


@dataclass(frozen=True)
class Claimed:
    claim: uuid.UUID


@dataclass(frozen=True)
class Pending:
    """Another process is asking the service right now."""


_READ: Final = """
SELECT state, ids, reason, expires_at > clock_timestamp() AS live
FROM id_lookups WHERE service = $1 AND lookup_key = $2
"""
_CLAIM: Final = """
INSERT INTO id_lookups AS l (service, lookup_key, state, claim, expires_at)
VALUES ($1, $2, 'pending', $3, clock_timestamp() + $4::interval)
ON CONFLICT (service, lookup_key) DO UPDATE
    SET state = 'pending', claim = EXCLUDED.claim, ids = NULL, reason = NULL,
        expires_at = EXCLUDED.expires_at, updated_at = now()
    WHERE l.expires_at <= clock_timestamp()
RETURNING claim
"""


def _result(row: Any) -> LookupResult | None:
    if row is None or not row["live"] or row["state"] == "pending":
        return None
    if row["state"] == "found":
        ids = row["ids"]
        return Found(json.loads(ids) if isinstance(ids, str) else dict(ids))
    return NotFound(row["reason"])


async def read_or_claim(
    conn: Conn, service: str, key: str, lease: timedelta
) -> Cached | Claimed | Pending:
    """A live answer; else the claim to ask (the caller must store or release it); else
    :class:`Pending` when another process holds a live claim."""
    row = await conn.fetchrow(_READ, service, key)
    found = _result(row)
    if found is not None:
        return Cached(found)
    if row is not None and row["live"]:
        return Pending()
    claim = await conn.fetchval(_CLAIM, service, key, uuid.uuid4(), lease)
    if claim is not None:
        return Claimed(claim)
    # Lost the race: another process claimed it, or even answered, just now.
    found = _result(await conn.fetchrow(_READ, service, key))
    return Pending() if found is None else Cached(found)


async def store(
    conn: Conn,
    service: str,
    key: str,
    claim: uuid.UUID,
    result: LookupResult,
    ttl: timedelta,
) -> bool:
    """Record the answer for ``ttl``; False when the claim was lost meanwhile (its lease ran
    out and another process took it over), in which case that process's answer stands."""
    if isinstance(result, Found):
        state, ids, reason = "found", json.dumps(result.ids), None
    else:
        state, ids, reason = "not_found", None, result.reason
    done = await conn.fetchval(
        "UPDATE id_lookups SET state = $4, ids = $5::jsonb, reason = $6, claim = NULL, "
        "expires_at = clock_timestamp() + $7::interval, updated_at = now() "
        "WHERE service = $1 AND lookup_key = $2 AND claim = $3 RETURNING true",
        service,
        key,
        claim,
        state,
        ids,
        reason,
        ttl,
    )
    return bool(done)


async def release(conn: Conn, service: str, key: str, claim: uuid.UUID) -> None:
    """Give a claim up without an answer: the next play may ask at once."""
    await conn.execute(
        "DELETE FROM id_lookups WHERE service = $1 AND lookup_key = $2 AND claim = $3",
        service,
        key,
        claim,
    )
