"""The one small HTTP step every client shares: send an HttpRequest on a long-lived
httpx client, hand back an HttpResponse with lower-case header names.

The clients speak httpx (the API the code and tests use) over aiohttp's connection pool
(``httpx_aiohttp.AiohttpTransport``): against a local server that answers at once, httpx's
own transport (httpcore) made 505-677 calls/s with 10 in flight, httpx over aiohttp
2,016-2,277, using about a third less CPU per call.

Failure policy: a connection error, a timeout or an answer that is not HTTP (a bad status
line, a broken chunk, headers past aiohttp's 8190-byte line limit, a body cut short) is a
:class:`TransportFailure`, which the dispatcher treats as transient (retry with backoff);
any HTTP answer, whatever its status, is a response for the client's classifier to judge.
The transport turns most of aiohttp's errors into httpx's (a refused connection becomes
``httpx.ConnectTimeout``, a cut one ``ReadError``) but lets an unreadable answer through as
``aiohttp.ClientResponseError``, so both families are caught here, the one place that
classifies them; the message names aiohttp's own error, which says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from scrobble_shared.trackers.http import USER_AGENT, HttpRequest, HttpResponse

# Explicit limits: a hung service must not hold a partition near max_poll_interval_ms.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_IN_FLIGHT = 16


class TransportFailure(Exception):
    """No HTTP answer came (refused, reset, timed out); worth another try later."""


def new_client(
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    limits: httpx.Limits | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """A long-lived client: pooled connections, explicit timeouts, our User-Agent.

    The transport maps httpx's settings onto aiohttp's: the connect timeout to its
    ``sock_connect``, the read timeout to ``sock_read``, the pool timeout to ``connect``
    (waiting for a pooled connection and opening it); ``max_connections`` to the
    connector's limit and ``keepalive_expiry`` to its keep-alive timeout. aiohttp has no
    write timeout; the caller's own deadline (``pacing.CALL_DEADLINE``) bounds a call."""
    return httpx.AsyncClient(
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        transport=AiohttpTransport(limits=limits or httpx.Limits(), verify=verify),
    )


class ClientSet:
    """The HTTP clients of one service: ``size`` long-lived clients of one connection each,
    lent one call at a time (``async with clients.one() as client``), so at most ``size``
    calls are out at once and a caller waits for a free client.

    Why not one client with ``size`` connections: on every request it queues and every one
    it finishes, httpcore looks at each connection of its pool and asks the socket of each
    idle one whether it is readable, so the cost of a call grows with the pool. With 1 ms
    of work between calls against a local server, one pool of 10 connections made 372
    calls/s and one of 32 made 262; 10 or 32 clients of one connection made about 485.
    The most recently freed client goes out first: under a light load a few warm
    connections carry everything and the others are never opened."""

    def __init__(self, size: int = DEFAULT_IN_FLIGHT, timeout: httpx.Timeout = DEFAULT_TIMEOUT):
        if size < 1:
            raise ValueError(f"a client set needs at least one client, not {size}")
        tls = httpx.create_ssl_context()  # httpx's own trust store, loaded once for all
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._all = [new_client(timeout, one, tls) for _ in range(size)]
        self._free: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()
        for client in reversed(self._all):
            self._free.put_nowait(client)

    @contextlib.asynccontextmanager
    async def one(self) -> AsyncIterator[httpx.AsyncClient]:
        client = await self._free.get()
        try:
            yield client
        finally:
            self._free.put_nowait(client)

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()


async def send(client: httpx.AsyncClient, request: HttpRequest) -> HttpResponse:
    try:
        answer = await client.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            json=request.json,
            data=dict(request.form) if request.form is not None else None,
            params=dict(request.params) if request.params is not None else None,
        )
    except (httpx.TransportError, aiohttp.ClientError) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
        raise TransportFailure(f"{type(cause).__name__} calling {request.url}") from exc
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return HttpResponse(answer.status_code, headers, answer.content)
