"""Server-side state of the flows in progress (table ``oauth_states``).

A browser flow's ``state`` is a random value bound to the user who started it, the service,
the PKCE verifier (encrypted like tokens), the return URL, and the browser that started it
(the SHA-256 of the nonce in that browser's cookie, see :mod:`.binding`). It lives 10
minutes and is spent at most once: the callback marks it used in one statement, so two
callbacks racing with the same state cannot both get through. A callback from another
browser does not spend it: the link still works in the browser that started it. Spent and
expired rows are kept a little while (so a replay is told "already used", not "unknown"),
then swept when new flows start.

A Trakt device code is bound the same way: its row is keyed by ``device:`` + the SHA-256 of
the device code (never the code itself), so only the user who asked for it can poll it.

A user has at most ``GATEWAY_MAX_OPEN_OAUTH_STATES`` flows open (neither used nor expired;
device codes count too). Starting one more drops the oldest open one, whose link then
answers "not recognised": whoever starts again has most likely given up on an older
attempt (a closed tab, a blocked popup), and the flow in their hands is the newest one.
Starts of one user are serialised by a transaction-scoped advisory lock, so concurrent
starts cannot overshoot the limit.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal

import asyncpg

from scrobble_gateway.connect import binding
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.service_names import ServiceName

STATE_TTL: Final = timedelta(minutes=10)
# Spent or expired rows stay this long after expiry, then go at the next sweep.
KEEP_AFTER_EXPIRY: Final = timedelta(hours=1)
DEVICE_PREFIX: Final = "device:"
# First key of the advisory lock serialising one user's starts (the second: the user).
_START_LOCK: Final = 0x6F617574

StateProblem = Literal["unknown", "used", "expired", "other_browser"]


class StateRejected(Exception):
    """The state cannot complete a flow: unknown (or another service's, or dropped), used,
    expired, or brought by a browser other than the one that started it."""

    def __init__(self, reason: StateProblem) -> None:
        super().__init__(reason)
        self.reason: StateProblem = reason


@dataclass(frozen=True)
class PendingConnect:
    """A started browser flow, as the callback finds it."""

    user_id: uuid.UUID
    service: ServiceName
    code_verifier: str | None = field(repr=False)
    return_url: str | None


def new_state() -> str:
    # 32 random bytes: 43 url-safe characters (the table wants at least 32).
    return secrets.token_urlsafe(32)


async def _sweep(db: asyncpg.Connection | asyncpg.Pool) -> None:
    await db.execute(
        "DELETE FROM oauth_states WHERE expires_at < now() - $1::interval", KEEP_AFTER_EXPIRY
    )


async def _open_flow(
    db: asyncpg.Pool,
    *,
    user_id: uuid.UUID,
    state: str,
    max_open: int,
    insert: str,
    args: tuple[object, ...],
) -> int:
    """Insert a flow's row (``insert`` takes ``state`` as $1 and ``args`` after it; its
    timestamps come from ``clock_timestamp()``, taken under the lock, so a later start is
    always the newer row), then drop the user's oldest open flows beyond ``max_open``.
    Returns how many were dropped."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", _START_LOCK, str(user_id)
        )
        await conn.execute(insert, state, *args)
        dropped = await conn.fetch(
            """DELETE FROM oauth_states WHERE state IN (
                   SELECT state FROM oauth_states
                   WHERE user_id = $1 AND state <> $2 AND used_at IS NULL
                       AND expires_at > now()
                       AND (created_at + $3::interval > now() OR state LIKE 'device:%')
                   ORDER BY created_at DESC, state DESC
                   OFFSET $4)
               RETURNING state""",
            user_id,
            state,
            STATE_TTL,
            max_open - 1,
        )
    return len(dropped)


async def start_flow(
    db: asyncpg.Pool,
    cipher: TokenCipher,
    *,
    user_id: uuid.UUID,
    service: ServiceName,
    code_verifier: str | None,
    return_url: str | None,
    browser_nonce_digest: bytes,
    max_open: int,
) -> tuple[str, int]:
    """Store a new flow for the user; its state, and how many older open flows of the
    user's were dropped to stay within ``max_open``."""
    state = new_state()
    await _sweep(db)
    dropped = await _open_flow(
        db,
        user_id=user_id,
        state=state,
        max_open=max_open,
        insert="""INSERT INTO oauth_states (state, user_id, service, code_verifier_enc,
                      return_url, browser_nonce_hash, created_at, expires_at)
                  VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(),
                      clock_timestamp() + $7::interval)""",
        args=(
            user_id,
            service,
            None if code_verifier is None else cipher.encrypt(code_verifier),
            return_url,
            browser_nonce_digest,
            STATE_TTL,
        ),
    )
    return state, dropped


async def spend_state(
    db: asyncpg.Pool,
    cipher: TokenCipher,
    *,
    state: str,
    service: ServiceName,
    browser_nonce: str | None,
) -> PendingConnect:
    """Mark the state used and return its flow, or :class:`StateRejected`.

    ``browser_nonce`` is what the browser's cookie for this state holds (None: no cookie);
    a browser without the right one is refused and the state stays open. Expiry counts
    from both ``expires_at`` and ``created_at`` + 10 minutes, whichever is sooner, so a row
    whose expiry was set generously still dies after 10 minutes. A row without a browser
    binding (started before there was one) cannot be finished.
    """
    if state.startswith(DEVICE_PREFIX):
        raise StateRejected("unknown")
    row = await db.fetchrow(
        """SELECT used_at IS NOT NULL AS used, browser_nonce_hash,
               (expires_at <= now() OR created_at + $3::interval <= now()) AS expired
           FROM oauth_states WHERE state = $1 AND service = $2""",
        state,
        service,
        STATE_TTL,
    )
    if row is None or row["browser_nonce_hash"] is None:
        raise StateRejected("unknown")
    if row["used"]:
        raise StateRejected("used")
    if row["expired"]:
        raise StateRejected("expired")
    if not binding.matches(browser_nonce, row["browser_nonce_hash"]):
        raise StateRejected("other_browser")
    spent = await db.fetchrow(
        """UPDATE oauth_states SET used_at = now()
           WHERE state = $1 AND service = $2 AND used_at IS NULL
           RETURNING user_id, code_verifier_enc, return_url""",
        state,
        service,
    )
    if spent is None:  # another callback with this state got there first
        raise StateRejected("used")
    verifier = spent["code_verifier_enc"]
    return PendingConnect(
        user_id=spent["user_id"],
        service=service,
        code_verifier=None if verifier is None else cipher.decrypt(verifier),
        return_url=spent["return_url"],
    )


# --- Trakt device codes -------------------------------------------------------------------


def _device_key(device_code: str) -> str:
    return DEVICE_PREFIX + hashlib.sha256(device_code.encode("utf-8")).hexdigest()


async def bind_device_code(
    db: asyncpg.Pool,
    *,
    user_id: uuid.UUID,
    device_code: str,
    expires_in_s: int,
    max_open: int,
) -> int:
    """Bind the device code to the user; how many older open flows of theirs were dropped."""
    await _sweep(db)
    return await _open_flow(
        db,
        user_id=user_id,
        state=_device_key(device_code),
        max_open=max_open,
        insert="""INSERT INTO oauth_states (state, user_id, service, created_at, expires_at)
                  VALUES ($1, $2, 'trakt', clock_timestamp(),
                      clock_timestamp() + make_interval(secs => $3))""",
        args=(user_id, float(max(expires_in_s, 1))),
    )


DeviceBinding = Literal["missing", "expired", "live"]


async def device_binding(
    db: asyncpg.Pool, *, user_id: uuid.UUID, device_code: str
) -> DeviceBinding:
    """Whether the caller holds this device code: another user's code is "missing" too."""
    expired = await db.fetchval(
        """SELECT expires_at <= now() FROM oauth_states
           WHERE state = $1 AND user_id = $2 AND service = 'trakt' AND used_at IS NULL""",
        _device_key(device_code),
        user_id,
    )
    if expired is None:
        return "missing"
    return "expired" if expired else "live"


async def finish_device_code(db: asyncpg.Pool, *, user_id: uuid.UUID, device_code: str) -> bool:
    """Spend the binding once the device code gave tokens (or can never give any)."""
    spent = await db.fetchval(
        """UPDATE oauth_states SET used_at = now()
           WHERE state = $1 AND user_id = $2 AND used_at IS NULL RETURNING true""",
        _device_key(device_code),
        user_id,
    )
    return bool(spent)
