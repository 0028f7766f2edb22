"""Charging requests to the per-user quotas (``quotas.py`` says which, how much and why) and
the fields and 429 answers that tell the client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from scrobble_gateway.keys import QUOTAS, find_caller
from scrobble_gateway.problems import problem
from scrobble_gateway.quotas import Charge, rate_limit_fields

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

QUOTA_EXCEEDED: Final = "https://iana.org/assignments/http-problem-types#quota-exceeded"
_CHARGED: Final = web.RequestKey("quota_charge", Charge)


def quota_exceeded(policy: str, detail: str, retry_after_s: int) -> web.Response:
    """The 429 of a spent quota (this module's, or the import jobs a day)."""
    response = problem(
        429,
        "Too Many Requests",
        detail,
        type=QUOTA_EXCEEDED,
        **{"violated-policies": [policy]},
    )
    response.headers["Retry-After"] = str(retry_after_s)
    return response


@web.middleware
async def quota_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost: charges the caller the auth middleware found; anonymous requests pass."""
    who = find_caller(request)
    if who is None:
        return await handler(request)
    charged = request.app[QUOTAS].charge(who.user_id, request.method)
    request[_CHARGED] = charged
    if not charged.allowed:
        policy = charged.policy
        return quota_exceeded(
            policy.name,
            f"more than {policy.per_minute} {policy.name} a minute; "
            f"try again in {charged.wait_s} s",
            charged.wait_s,
        )
    return await handler(request)


async def add_rate_limit_fields(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the fields go on every answer of a charged request, those
    the problem middleware made from an exception included. Added, not set: a route may
    list a policy of its own (imports a day), and the fields are lists."""
    charged = request.get(_CHARGED)
    if charged is None:
        return
    for name, value in rate_limit_fields(charged).items():
        response.headers.add(name, value)
