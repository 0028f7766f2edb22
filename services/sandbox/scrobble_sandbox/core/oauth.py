"""The OAuth 2 authorization-code flow (RFC 6749 4.1) that Trakt, Simkl and AniList share.

The authorize page, the decision, code issuance and the code exchange at the token endpoint
work alike on all three; a subclass states what its real service does differently: the status
for an unknown client, PKCE (core/pkce.py), how a client authenticates at the token endpoint,
the out-of-band code page, the implicit grant, extra grant types, the shape of error bodies
and of the token answer.
"""

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox.core import pkce
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.consent import ConsentFlow
from scrobble_sandbox.core.fake import USER_KEY
from scrobble_sandbox.core.http import json_response, read_params
from scrobble_sandbox.core.pages import OOB_REDIRECT, message_page, redirect
from scrobble_sandbox.core.service import StateT
from scrobble_sandbox.core.tokens import new_secret

CODE_TTL = 600

GrantHandler = Callable[[web.Request, dict[str, str]], web.Response]


@dataclass
class CodeGrant:
    """An issued authorization code: redeemable once, before it expires, by the same client
    redirect (and, when the authorize request sent a PKCE challenge, the matching verifier)."""

    user: str
    redirect_uri: str
    expires_at: float
    challenge: str | None = None
    challenge_method: str | None = None
    used: bool = False

    def valid_for(self, redirect_uri: str | None) -> bool:
        return not self.used and self.expires_at >= now() and redirect_uri == self.redirect_uri

    def proven_by(self, verifier: str | None) -> bool:
        """The PKCE check alone: a code issued with a challenge needs its verifier."""
        return self.challenge is None or pkce.verify(
            self.challenge, self.challenge_method, verifier
        )

    def redeemable(self, redirect_uri: str | None, verifier: str | None) -> bool:
        return self.valid_for(redirect_uri) and self.proven_by(verifier)


class AuthorizationCodeFlow(ConsentFlow[StateT]):
    """Authorize page, decision, code issuance and the token endpoint's code exchange."""

    decision_path = "/oauth/authorize/decision"
    client_id: ClassVar[str]
    client_secret: ClassVar[str]
    # Trakt answers an unknown client_id on the authorize page with 401, the others 400.
    unknown_client_status: ClassVar[int] = 400
    # AniList also takes `token` (implicit grant) and assumes `code` when none is sent.
    response_types: ClassVar[tuple[str, ...]] = ("code",)
    default_response_type: ClassVar[str | None] = None
    code_prefix: ClassVar[str]
    code_ttl: ClassVar[float] = CODE_TTL
    # How the service reads PKCE parameters; None: it takes none (they are ignored).
    pkce_policy: ClassVar[pkce.Policy | None] = None
    # Trakt shows the code on a page for the out-of-band redirect instead of redirecting.
    oob_page: ClassVar[bool] = False
    unsupported_grant_text: ClassVar[str] = "The grant type is not supported"
    invalid_code_text: ClassVar[str] = "The authorization code is invalid"

    # --- what each service provides --------------------------------------------------------
    @property
    @abstractmethod
    def codes(self) -> dict[str, CodeGrant]:
        """The fake's issued codes (in its state, so a reset forgets them)."""

    @abstractmethod
    def oauth_error(self, status: int, code: str, description: str) -> web.Response:
        """The service's error body for the token endpoint."""

    @abstractmethod
    def token_body(self, user: str) -> dict[str, Any]:
        """Issue tokens for `user` and describe them as the token endpoint answers."""

    def extra_grants(self) -> dict[str, GrantHandler]:
        """grant_type -> handler, beyond authorization_code (e.g. refresh_token)."""
        return {}

    # --- authorize page and decision -------------------------------------------------------
    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.client_id:
            return message_page(
                "Invalid client", "Unknown client_id", status=self.unknown_client_status
            )
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri:
            return message_page("Invalid request", "redirect_uri is required", status=400)
        state = q.get("state", "")
        response_type = q.get("response_type", self.default_response_type)
        if response_type not in self.response_types:
            return redirect(redirect_uri, {"error": "unsupported_response_type", "state": state})
        params = {"redirect_uri": redirect_uri, "state": state}
        if self.pkce_policy is not None:
            try:
                found = self.pkce_policy.read(
                    q.get("code_challenge"), q.get("code_challenge_method")
                )
            except pkce.UnsupportedMethod:
                return redirect(redirect_uri, {"error": "invalid_request", "state": state})
            if found is not None:
                params["code_challenge"], params["code_challenge_method"] = found
        if len(self.response_types) > 1 and response_type is not None:
            # The decision must know which grant was asked for.
            params["response_type"] = response_type
        return self.consent(q, params)

    def approve(self, params: dict[str, str], user: str) -> web.Response:
        return self.issue_code(params, user)

    def refuse(self, params: dict[str, str]) -> web.Response:
        return redirect(
            params.get("redirect_uri", ""),
            {"error": "access_denied", "state": params.get("state", "")},
        )

    def issue_code(self, params: dict[str, str], user: str) -> web.Response:
        code = new_secret(self.code_prefix, 16)
        # Carried through the consent page's form: only a service that reads them keeps them.
        challenge = params.get("code_challenge") if self.pkce_policy is not None else None
        method = params.get("code_challenge_method") if self.pkce_policy is not None else None
        self.codes[code] = CodeGrant(
            user=user,
            redirect_uri=params["redirect_uri"],
            expires_at=now() + self.code_ttl,
            challenge=challenge or None,
            challenge_method=method or None,
        )
        if self.oob_page and params["redirect_uri"] == OOB_REDIRECT:
            return message_page("Authorization code", code)
        return redirect(params["redirect_uri"], {"code": code, "state": params.get("state", "")})

    # --- token endpoint --------------------------------------------------------------------
    def client_ok(self, body: dict[str, str]) -> bool:
        return (
            body.get("client_id") == self.client_id
            and body.get("client_secret") == self.client_secret
        )

    def bad_client(self) -> web.Response:
        return self.oauth_error(401, "invalid_client", "Client authentication failed")

    def authenticate(self, body: dict[str, str]) -> web.Response | None:
        """The client's credentials at the token endpoint; None when they are good."""
        return None if self.client_ok(body) else self.bad_client()

    def pkce_failed(self) -> web.Response:
        """The answer to a verifier that does not fit the code's challenge (or its lack)."""
        return self.oauth_error(400, "invalid_grant", self.invalid_code_text)

    def verifier_fits(self, grant: CodeGrant, verifier: str | None) -> bool:
        if self.pkce_policy is None:
            return True  # the service ignores PKCE parameters
        if grant.challenge is None:
            # A verifier for a code issued without a challenge proves nothing: refused.
            return not verifier
        return grant.proven_by(verifier)

    async def token(self, request: web.Request) -> web.Response:
        body = await read_params(request)
        refused = self.authenticate(body)
        if refused is not None:
            return refused
        grant_type = body.get("grant_type", "")
        if grant_type == "authorization_code":
            return self.redeem_code(request, body)
        handler = self.extra_grants().get(grant_type)
        if handler is not None:
            return handler(request, body)
        return self.oauth_error(400, "unsupported_grant_type", self.unsupported_grant_text)

    def redeem_code(self, request: web.Request, body: dict[str, str]) -> web.Response:
        grant = self.codes.get(body.get("code", ""))
        if grant is None or not grant.valid_for(body.get("redirect_uri")):
            return self.oauth_error(400, "invalid_grant", self.invalid_code_text)
        if not self.verifier_fits(grant, body.get("code_verifier") or None):
            return self.pkce_failed()
        grant.used = True
        request[USER_KEY] = grant.user
        return json_response(self.token_body(grant.user))
