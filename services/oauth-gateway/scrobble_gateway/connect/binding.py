"""Binding a browser flow to the browser that started it (RFC 9700 section 4.7).

Starting a flow answers with a cookie holding a random nonce (256 bits); the state's row
keeps only the nonce's SHA-256. The callback finishes the flow only when the browser brings
that cookie back, compared in constant time. Whoever else opens the authorization URL (the
account-linking attack: user A's link completed by user B, with B's account at the
service) lands on a page saying to open the link in the browser that started it.

The cookie:

- is named after the state (``scrobble_oauth_`` + 16 hex digits of the state's SHA-256),
  so two flows open in one browser, even of one service, do not overwrite each other;
- is sent only to that service's callback path (the path of its redirect URI), lives as
  long as the state (10 minutes), is HttpOnly, SameSite=Lax (a top-level GET from the
  service's site still carries it), and Secure when ``GATEWAY_PUBLIC_URL`` is https;
- is set by the answer to ``POST /connect/{service}``, which the page or the host app's
  script calls in the very browser that then opens the authorization URL.

Pure: no database, no network.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

COOKIE_PREFIX: Final = "scrobble_oauth_"
# 32 random bytes: 43 url-safe characters.
NONCE_BYTES: Final = 32


@dataclass(frozen=True)
class BrowserNonce:
    """A new flow's nonce (for the cookie) and its digest (for the database)."""

    value: str = field(repr=False)

    @property
    def digest(self) -> bytes:
        return nonce_digest(self.value)


def new_nonce() -> BrowserNonce:
    return BrowserNonce(secrets.token_urlsafe(NONCE_BYTES))


def nonce_digest(nonce: str) -> bytes:
    return hashlib.sha256(nonce.encode("utf-8")).digest()


def cookie_name(state: str) -> str:
    """The cookie of one flow, found again from the state the service sends back."""
    return COOKIE_PREFIX + hashlib.sha256(state.encode("utf-8")).hexdigest()[:16]


def matches(nonce: str | None, stored_digest: bytes | None) -> bool:
    """True when the browser's nonce is the one the flow was started with."""
    if not nonce or stored_digest is None:
        return False
    return hmac.compare_digest(nonce_digest(nonce), bytes(stored_digest))


def cookie_path(callback_url: str) -> str:
    return urlsplit(callback_url).path or "/"


def set_cookie(
    response: web.StreamResponse,
    *,
    state: str,
    nonce: BrowserNonce,
    callback_url: str,
    public_url: str,
    lifetime: timedelta,
) -> None:
    response.set_cookie(
        cookie_name(state),
        nonce.value,
        max_age=int(lifetime.total_seconds()),
        path=cookie_path(callback_url),
        httponly=True,
        samesite="Lax",
        secure=urlsplit(public_url).scheme == "https",
    )


def clear_cookie(response: web.StreamResponse, *, state: str, callback_url: str) -> None:
    """Tell the browser to forget the flow's cookie (the flow has ended)."""
    response.del_cookie(cookie_name(state), path=cookie_path(callback_url))
