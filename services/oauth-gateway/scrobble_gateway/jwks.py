"""The signing keys of ``GATEWAY_JWKS_URL``, cached so that checking a token rarely waits
for the identity provider and the provider is never asked once per request.

- Keys are trusted for ``GATEWAY_JWKS_CACHE_TTL`` after the fetch that brought them: a key
  the provider withdrew stops working within that time. Past 80 % of it, a request with a
  known key starts a refresh in the background and does not wait for it.
- A ``kid`` not in the cached set makes the cache fetch again, but at most once per
  ``GATEWAY_JWKS_REFETCH_INTERVAL``; in between, an unknown ``kid`` is simply unknown.
- One fetch at a time: concurrent requests that need it wait for the same one
  (single-flight); a request that gives up does not cancel it for the others.
- A provider that is down, slow (past :data:`FETCH_TIMEOUT_S`) or answers something that
  is not a key set leaves the cached keys as they were: known, unexpired keys keep
  working. A request that needs what the cache cannot give (its ``kid`` is unknown, or the
  keys expired) gets :class:`JwksUnavailable`, and no new attempt is made for
  :data:`FAILURE_BACKOFF_S` (so a provider that is down is asked about once per backoff).

Only asymmetric signing keys are taken from the set, each pinned to one algorithm (the
JWK's ``alg``, else the one its type implies): a token must use exactly that algorithm.
:func:`parse_key_set` is pure; :class:`JwksCache` does the HTTP with its own
``httpx.AsyncClient``, opened and closed with the app.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final

import httpx
import jwt

from scrobble_shared.json_limits import UnreadableJson, load_json

log = logging.getLogger(__name__)

# Algorithms a key from a JWKS may be used with: asymmetric only (a symmetric "oct" key in
# a public key set would let anyone who can read the set sign tokens), never "none".
JWKS_ALGORITHMS: Final = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
    }
)
# A whole fetch (connect, answer, body) must be done within this, or the provider is slow.
FETCH_TIMEOUT_S: Final = 5.0
# After a failed fetch, no new attempt for this long (never longer than the refetch interval).
FAILURE_BACKOFF_S: Final = 5.0
# A key set is a few kilobytes; anything much larger is not one.
MAX_KEY_SET_BYTES: Final = 512 * 1024
# Past this share of the TTL, a request with a known key starts a refresh it does not wait for.
REFRESH_AHEAD: Final = 0.8


class JwksError(Exception):
    """Base error of the key-set cache."""


class BadKeySet(JwksError, ValueError):
    """What the JWKS URL answered is not a key set (not JSON, no ``keys`` list, not 200)."""


class JwksUnavailable(JwksError):
    """The keys a token needs cannot be had now (the provider is down, slow or answers
    garbage, and the cache cannot help); transient: try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the key set cannot be fetched now; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


def parse_key_set(body: bytes) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by ``kid``.

    Raises :class:`BadKeySet` when the document is not a key set at all. Entries that are
    not usable signing keys (no ``kid``, ``use`` other than ``sig``, symmetric, private, an
    algorithm we do not take, or not a valid key) are left out; the first of two entries
    with one ``kid`` wins.
    """
    try:
        document = load_json(body)
    except UnreadableJson as exc:
        raise BadKeySet(f"the JWKS is {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise BadKeySet("the JWKS has no list of keys")
    keys: dict[str, jwt.PyJWK] = {}
    skipped = 0
    for entry in document["keys"]:
        kid = entry.get("kid") if isinstance(entry, dict) else None
        key = _signing_key(entry) if isinstance(kid, str) and kid and kid not in keys else None
        if key is None or not isinstance(kid, str):
            skipped += 1
            continue
        keys[kid] = key
    if skipped:
        log.info("auth: %d entr(ies) of the JWKS are not usable signing keys, left out", skipped)
    return keys


def _signing_key(entry: Mapping[str, Any]) -> jwt.PyJWK | None:
    if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct" or "d" in entry:
        return None
    declared = entry.get("alg")
    if declared is not None and declared not in JWKS_ALGORITHMS:
        return None
    try:
        key = jwt.PyJWK(dict(entry))
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None
    return key if key.algorithm_name in JWKS_ALGORITHMS else None


class JwksCache:
    """The keys of one JWKS URL (see the module docstring for the rules).

    ``clock`` (monotonic seconds) and ``transport`` are for tests. Use it inside
    ``async with`` (or :meth:`open` / :meth:`aclose`): that opens and closes its client.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float,
        refetch_interval_s: float,
        fetch_timeout_s: float = FETCH_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._ttl = ttl_s
        self._interval = refetch_interval_s
        self._backoff = min(FAILURE_BACKOFF_S, refetch_interval_s)
        self._fetch_timeout = fetch_timeout_s
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # the last fetch that brought a key set
        self._failed_at: float | None = None  # the last fetch, when it failed
        self._unknown_kid_fetch_at: float | None = None
        self._refresh: asyncio.Task[None] | None = None
        self.fetches = 0  # fetches started, for tests and figures

    async def open(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self._fetch_timeout),
            headers=self._headers,
            follow_redirects=True,
        )

    async def aclose(self) -> None:
        refresh, self._refresh = self._refresh, None
        if refresh is not None:
            refresh.cancel()
            await asyncio.gather(refresh, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> JwksCache:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key of ``kid``, or None when the provider's current set has no such key.

        Raises :class:`JwksUnavailable` when that cannot be told now.
        """
        now = self._clock()
        fresh = self._is_fresh(now)
        if fresh and kid in self._keys:
            assert self._fetched_at is not None
            if now - self._fetched_at >= self._ttl * REFRESH_AHEAD and self._may_retry(now):
                self._start_refresh()  # not awaited: this request has its key
            return self._keys[kid]
        if self._refresh is None and self._may_retry(now):
            if not fresh:
                self._start_refresh()
            elif self._unknown_kid_may_fetch(now):
                self._unknown_kid_fetch_at = now
                self._start_refresh()
        if self._refresh is not None:
            # Shielded: one request giving up (a client gone) leaves the fetch to the others.
            await asyncio.shield(self._refresh)
        return self._settle(kid)

    def _settle(self, kid: str) -> jwt.PyJWK | None:
        now = self._clock()
        if self._is_fresh(now) and kid in self._keys:
            return self._keys[kid]
        if not self._is_fresh(now) or self._failed_at is not None:
            raise JwksUnavailable(self._retry_after(now))
        return None

    def _is_fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._ttl

    def _may_retry(self, now: float) -> bool:
        return self._failed_at is None or now - self._failed_at >= self._backoff

    def _unknown_kid_may_fetch(self, now: float) -> bool:
        last = self._unknown_kid_fetch_at
        return last is None or now - last >= self._interval

    def _retry_after(self, now: float) -> int:
        waited = now - self._failed_at if self._failed_at is not None else 0.0
        return max(1, math.ceil(self._backoff - waited))

    def _start_refresh(self) -> None:
        if self._refresh is None:
            self._refresh = asyncio.create_task(self._run_refresh(), name="jwks-refresh")

    async def _run_refresh(self) -> None:
        self.fetches += 1
        try:
            keys = await self._fetch()
        except (httpx.HTTPError, TimeoutError, BadKeySet) as exc:
            self._failed_at = self._clock()
            log.warning(
                "auth: the JWKS at GATEWAY_JWKS_URL could not be used (%s: %s); "
                "keeping %d cached key(s)",
                type(exc).__name__,
                self._reason(exc),
                len(self._keys),
            )
        except Exception:
            # A bug, not the provider: say where, and count it as a failed fetch so that
            # requests get a 503 rather than waiting on a task that is gone.
            self._failed_at = self._clock()
            log.exception("auth: reading the JWKS failed unexpectedly")
        else:
            self._keys = keys
            self._fetched_at = self._clock()
            self._failed_at = None
            log.info("auth: fetched the JWKS: %d signing key(s)", len(keys))
        finally:
            self._refresh = None

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        if self._client is None:
            raise RuntimeError("the JWKS cache is not open")
        async with (
            asyncio.timeout(self._fetch_timeout),
            self._client.stream("GET", self._url) as response,
        ):
            if response.status_code != 200:
                raise BadKeySet(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_KEY_SET_BYTES:
                    raise BadKeySet(f"larger than {MAX_KEY_SET_BYTES} bytes")
        return parse_key_set(bytes(body))

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, BadKeySet):
            return str(exc)
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            return f"no complete answer within {self._fetch_timeout:g} s"
        return "unreachable"
