"""The consent step every browser sign-in shares: a page to approve or deny, or auto-approval.

Trakt, Simkl and AniList (OAuth) and Last.fm (web auth) all show the sandbox user a page with
Approve and Deny, post the answer back, and skip the page when a test set `auto_approve`.
Only what is carried through the page and what approval or refusal does differ per service.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from aiohttp import web

from scrobble_sandbox.core.http import read_form
from scrobble_sandbox.core.pages import consent_page, decision_user
from scrobble_sandbox.core.service import ServicePart, StateT
from scrobble_sandbox.credentials import SANDBOX_USER


class ConsentFlow(ServicePart[StateT], ABC):
    """Shows the consent page (or approves at once) and handles the posted decision."""

    # Shown on the page: "<service> sandbox" and the prompt under it.
    service: ClassVar[str]
    prompt: ClassVar[str]
    # Where the page posts its decision, relative to the fake's auth surface.
    decision_path: ClassVar[str]

    def consent(self, query: Mapping[str, str], params: dict[str, str]) -> web.Response:
        """The page carrying `params` through the browser, or the approval itself."""
        if self.fake.auto_approve:
            return self.approve(params, query.get("sandbox_user") or SANDBOX_USER)
        return consent_page(
            service=self.service,
            action=f"{self.fake.url('auth')}{self.decision_path}",
            hidden=params,
            prompt=self.prompt,
        )

    async def decide(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        if form.get("decision") != "approve":
            return self.refuse(form)
        return self.approve(form, decision_user(form))

    @abstractmethod
    def approve(self, params: dict[str, str], user: str) -> web.Response:
        """`user` granted access; `params` are what the page carried."""

    @abstractmethod
    def refuse(self, params: dict[str, str]) -> web.Response:
        """The user pressed Deny."""
