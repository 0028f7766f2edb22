"""The page's session cookie and its CSRF token, as plain values. No database, no clock
of its own: the store (:mod:`.session_store`) keeps the sessions, this says what they are.

- The cookie holds a random value (256 bits); the database keeps only its SHA-256, so a
  copy of ``page_sessions`` opens nobody's session. It is HttpOnly, SameSite=Lax, lives
  until the session's absolute end, and under https it is Secure with the ``__Host-``
  prefix (only this host, path ``/``, never set over plain http).
- The CSRF token is an HMAC of the cookie's value: it changes with the session (new at
  every sign-in), needs no storage, and cannot be worked out from anything a page from
  another site can read. The page puts it in every form and in the header of every call
  its script makes to the API.
- A session is live until it is ended (sign out), its absolute end (``expires_at``) or
  ``idle`` without a request, whichever comes first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlsplit

from aiohttp import web

COOKIE: Final = "scrobble_session"
# Under https: the browser takes it only from a secure origin, for this host and path /.
SECURE_COOKIE: Final = "__Host-scrobble_session"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
# 32 random bytes: 43 url-safe characters.
VALUE_BYTES: Final = 32
_CSRF_CONTEXT: Final = b"revenge-scrobble page csrf v1"

SessionState = Literal["live", "ended", "expired", "idle"]


def is_secure(public_url: str) -> bool:
    return urlsplit(public_url).scheme == "https"


def cookie_name(public_url: str) -> str:
    return SECURE_COOKIE if is_secure(public_url) else COOKIE


def new_value() -> str:
    return secrets.token_urlsafe(VALUE_BYTES)


def value_digest(value: str) -> bytes:
    """What the database keeps of a cookie's value."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def csrf_token(value: str) -> str:
    """The CSRF token of the session whose cookie holds ``value``."""
    mac = hmac.new(value.encode("utf-8", "surrogatepass"), _CSRF_CONTEXT, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")


def csrf_matches(value: str, given: str | None) -> bool:
    """True when ``given`` is the session's CSRF token (compared in constant time)."""
    if not given:
        return False
    return hmac.compare_digest(csrf_token(value).encode(), given.encode("utf-8", "replace"))


@dataclass(frozen=True)
class SessionTimes:
    """When a stored session started, was last seen, ends at the latest, and was ended."""

    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None


def session_state(times: SessionTimes, now: datetime, idle: timedelta) -> SessionState:
    if times.ended_at is not None:
        return "ended"
    if now >= times.expires_at:
        return "expired"
    if now >= times.last_seen_at + idle:
        return "idle"
    return "live"


def set_cookie(
    response: web.StreamResponse, value: str, *, public_url: str, max_age: timedelta
) -> None:
    response.set_cookie(
        cookie_name(public_url),
        value,
        max_age=int(max_age.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=is_secure(public_url),
    )


def clear_cookie(response: web.StreamResponse, *, public_url: str) -> None:
    response.del_cookie(
        cookie_name(public_url),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=is_secure(public_url),
    )


def cookie_value(request: web.Request, public_url: str) -> str | None:
    value = request.cookies.get(cookie_name(public_url))
    return value or None
