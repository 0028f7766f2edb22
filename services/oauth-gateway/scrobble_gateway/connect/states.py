"""Server-side state of the flows in progress (table ``oauth_states``).

A browser flow's ``state`` is a random value bound to the user who started it, the service,
the PKCE verifier (encrypted like tokens) and the return URL. It lives 10 minutes and is
spent at most once: the callback marks it used in one statement, so two callbacks racing
with the same state cannot both get through. Spent and expired rows are kept a little while
(so a replay is told "already used", not "unknown"), then swept when new flows start.

A Trakt device code is bound the same way: its row is keyed by ``device:`` + the SHA-256 of
the device code (never the code itself), so only the user who asked for it can poll it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal

import asyncpg

from scrobble_shared.crypto import TokenCipher
from scrobble_shared.settings import ServiceName

STATE_TTL: Final = timedelta(minutes=10)
# Spent or expired rows stay this long after expiry, then go at the next sweep.
KEEP_AFTER_EXPIRY: Final = timedelta(hours=1)
DEVICE_PREFIX: Final = "device:"

StateProblem = Literal["unknown", "used", "expired"]


class StateRejected(Exception):
    """The state cannot complete a flow: unknown (or another service's), used, or expired."""

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


async def start_flow(
    db: asyncpg.Pool,
    cipher: TokenCipher,
    *,
    user_id: uuid.UUID,
    service: ServiceName,
    code_verifier: str | None,
    return_url: str | None,
) -> str:
    """Store a new flow for the user and return its state."""
    state = new_state()
    await _sweep(db)
    await db.execute(
        """INSERT INTO oauth_states (state, user_id, service, code_verifier_enc, return_url,
               expires_at)
           VALUES ($1, $2, $3, $4, $5, now() + $6::interval)""",
        state,
        user_id,
        service,
        None if code_verifier is None else cipher.encrypt(code_verifier),
        return_url,
        STATE_TTL,
    )
    return state


async def spend_state(
    db: asyncpg.Pool, cipher: TokenCipher, *, state: str, service: ServiceName
) -> PendingConnect:
    """Mark the state used and return its flow, or :class:`StateRejected`.

    Expiry counts from both ``expires_at`` and ``created_at`` + 10 minutes, whichever is
    sooner, so a row whose expiry was set generously still dies after 10 minutes.
    """
    if state.startswith(DEVICE_PREFIX):
        raise StateRejected("unknown")
    row = await db.fetchrow(
        """UPDATE oauth_states SET used_at = now()
           WHERE state = $1 AND service = $2 AND used_at IS NULL
           RETURNING user_id, code_verifier_enc, return_url,
               (expires_at <= now() OR created_at + $3::interval <= now()) AS expired""",
        state,
        service,
        STATE_TTL,
    )
    if row is None:
        used = await db.fetchval(
            "SELECT used_at IS NOT NULL FROM oauth_states WHERE state = $1 AND service = $2",
            state,
            service,
        )
        raise StateRejected("unknown" if used is None else "used")
    if row["expired"]:
        raise StateRejected("expired")
    verifier = row["code_verifier_enc"]
    return PendingConnect(
        user_id=row["user_id"],
        service=service,
        code_verifier=None if verifier is None else cipher.decrypt(verifier),
        return_url=row["return_url"],
    )


# --- Trakt device codes -------------------------------------------------------------------


def _device_key(device_code: str) -> str:
    return DEVICE_PREFIX + hashlib.sha256(device_code.encode("utf-8")).hexdigest()


async def bind_device_code(
    db: asyncpg.Pool, *, user_id: uuid.UUID, device_code: str, expires_in_s: int
) -> None:
    await _sweep(db)
    await db.execute(
        """INSERT INTO oauth_states (state, user_id, service, expires_at)
           VALUES ($1, $2, 'trakt', now() + make_interval(secs => $3))""",
        _device_key(device_code),
        user_id,
        float(max(expires_in_s, 1)),
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
