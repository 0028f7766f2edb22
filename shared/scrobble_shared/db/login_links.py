"""One-time sign-in links to the gateway's page (table ``login_links``).

A link is the page's sign-in address with a random token in its query string
(``/sign-in?token=...``; the gateway's access log never shows query strings). Only the
token's SHA-256 is stored. A link signs in once, within 15 minutes: spending it is one
``UPDATE ... WHERE used_at IS NULL``, so two clicks racing cannot both get through.

Made by ``scrobble login-link`` and by the gateway's admin route; spent by the gateway's
sign-in form. Both need the same table, so it lives here.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlencode
from uuid import UUID

import asyncpg

from scrobble_shared.db import Conn

LOGIN_LINK_TTL: Final = timedelta(minutes=15)
# Spent and expired links are kept this long after expiry, then swept.
KEEP_AFTER_EXPIRY: Final = timedelta(days=1)
SIGN_IN_PATH: Final = "/sign-in"
# 32 random bytes: 43 url-safe characters.
TOKEN_BYTES: Final = 32

LinkProblem = Literal["unknown", "used", "expired"]


class LinkRejected(Exception):
    """The link cannot sign anyone in: unknown, already used, or expired."""

    def __init__(self, reason: LinkProblem) -> None:
        super().__init__(reason)
        self.reason: LinkProblem = reason


@dataclass(frozen=True)
class LoginLink:
    """A new link: the URL to hand over (it signs in: never log it) and when it expires."""

    url: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class SpentLink:
    """Who a spent link signs in."""

    user_id: UUID
    admin: bool


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def sign_in_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{SIGN_IN_PATH}?{urlencode({'token': token})}"


async def create_login_link(
    conn: Conn,
    user_id: UUID,
    *,
    admin: bool,
    public_url: str,
    ttl: timedelta = LOGIN_LINK_TTL,
) -> LoginLink:
    """A new link for ``user_id`` (with the admin role when ``admin``)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await conn.execute(
        "DELETE FROM login_links WHERE expires_at < now() - $1::interval", KEEP_AFTER_EXPIRY
    )
    expires_at = await conn.fetchval(
        "INSERT INTO login_links (token_hash, user_id, admin, expires_at) "
        "VALUES ($1, $2, $3, now() + $4::interval) RETURNING expires_at",
        token_digest(token),
        user_id,
        admin,
        ttl,
    )
    return LoginLink(url=sign_in_url(public_url, token), expires_at=expires_at)


async def check_login_link(conn: Conn, token: str) -> None:
    """:class:`LinkRejected` when the link cannot sign in now; spends nothing (the page
    asks before it signs in, so a mail scanner opening the link does not use it up)."""
    row = await conn.fetchrow(
        "SELECT used_at IS NOT NULL AS used, expires_at <= now() AS expired "
        "FROM login_links WHERE token_hash = $1",
        token_digest(token),
    )
    _raise_for(row)


def _raise_for(row: asyncpg.Record | None) -> None:
    if row is None:
        raise LinkRejected("unknown")
    if row["used"]:
        raise LinkRejected("used")
    if row["expired"]:
        raise LinkRejected("expired")


async def spend_login_link(conn: Conn, token: str) -> SpentLink:
    """Mark the link used and say whom it signs in, or :class:`LinkRejected`."""
    digest = token_digest(token)
    spent = await conn.fetchrow(
        "UPDATE login_links SET used_at = now() "
        "WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() "
        "RETURNING user_id, admin",
        digest,
    )
    if spent is not None:
        return SpentLink(user_id=spent["user_id"], admin=spent["admin"])
    row = await conn.fetchrow(
        "SELECT used_at IS NOT NULL AS used, expires_at <= now() AS expired "
        "FROM login_links WHERE token_hash = $1",
        digest,
    )
    _raise_for(row)
    raise LinkRejected("used")  # spent by another request between the two statements
