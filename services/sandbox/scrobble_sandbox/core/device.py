"""Device grants: Trakt's device flow and Simkl's PIN flow, where a person types a short code
on an activation page while the device polls for its token.

The grant, its poll pacing and the activation page are the same on both; what a poll answers
(Trakt: bare HTTP statuses; Simkl: `result` OK/KO) and what a refusal does stay per service.
"""

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from scrobble_sandbox.core.http import read_form
from scrobble_sandbox.core.pages import consent_page, decision_user, message_page

DeviceStatus = Literal["pending", "approved", "denied", "used"]


def user_code(length: int) -> str:
    """A code a person types on the activation page."""
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


@dataclass
class DeviceGrant:
    device_code: str
    user_code: str
    expires_at: float
    interval: int
    status: DeviceStatus = "pending"
    user: str | None = None
    last_poll: float | None = None

    def approve(self, user: str) -> None:
        self.status, self.user = "approved", user

    def poll(self, at: float) -> bool:
        """Note a poll at `at`; True when it came sooner than `interval` after the last."""
        too_fast = self.last_poll is not None and at - self.last_poll < self.interval
        self.last_poll = at
        return too_fast


def activation_page(request: web.Request, *, service: str, action: str) -> web.Response:
    """The page to type (or confirm, when the link carried it) the device's code."""
    code = request.match_info.get("code") or request.query.get("code", "")
    return consent_page(
        service=service,
        action=action,
        hidden={},
        fields=[("user_code", "Code shown on your device", code.upper())],
        prompt="Enter the code your device shows, then Approve.",
    )


async def activation_decision(
    request: web.Request, find: Callable[[str], DeviceGrant | None]
) -> tuple[DeviceGrant, str | None] | web.Response:
    """The grant the posted code names and who approved it (None: denied), or a 404 page."""
    form = await read_form(request)
    grant = find(form.get("user_code", "").strip().upper())
    if grant is None:
        return message_page("Unknown code", "That code is not valid", status=404)
    return grant, decision_user(form) if form.get("decision") == "approve" else None
