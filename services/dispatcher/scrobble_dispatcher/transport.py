"""The one small HTTP step every client shares: send an HttpRequest on a long-lived
httpx client, hand back an HttpResponse with lower-case header names.

Failure policy: a connection error or a timeout is a :class:`TransportFailure`, which the
dispatcher treats as transient (retry with backoff); any HTTP answer, whatever its status,
is a response for the client's classifier to judge.
"""

from __future__ import annotations

import httpx

from scrobble_dispatcher.clients.base import USER_AGENT, HttpRequest, HttpResponse

# Explicit limits: a hung service must not hold a partition near max_poll_interval_ms.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class TransportFailure(Exception):
    """No HTTP answer came (refused, reset, timed out); worth another try later."""


def new_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """The long-lived client for one service: pooled connections, explicit timeouts."""
    return httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT})


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
    except httpx.TransportError as exc:
        raise TransportFailure(f"{type(exc).__name__} calling {request.url}") from exc
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return HttpResponse(answer.status_code, headers, answer.content)
