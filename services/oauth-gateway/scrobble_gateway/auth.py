"""Bearer JWTs (CONTRACTS section 4): who the caller is, checked on every route but the
public ones.

Tokens are HS256 with ``GATEWAY_JWT_SECRET``, or signed with a key from
``GATEWAY_JWKS_URL`` (RS/ES/PS/EdDSA); the token's header ``alg`` picks which, and only
algorithms of a configured kind are accepted (never ``none``). ``exp`` is required and
checked, ``nbf`` and ``iat`` are checked when present, without leeway; ``sub`` must be a
UUID (the user id) and ``roles``, when present, a list of strings. ``aud`` is not checked:
no audience is configured. Anything wrong is a 401 with ``WWW-Authenticate: Bearer``; a
non-admin on an admin route is a 403. The token itself is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import jwt
from aiohttp import web
from aiohttp.typedefs import Middleware

from scrobble_gateway.keys import Caller, set_caller
from scrobble_gateway.problems import problem
from scrobble_shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HMAC_ALGORITHMS: Final = ("HS256",)
JWKS_ALGORITHMS: Final = (
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
)
REALM: Final = "revenge-scrobble"


class Unauthenticated(Exception):
    """The bearer token is missing or not acceptable; the message is safe to show."""


class TokenVerifier:
    """Checks bearer tokens against the configured secret and/or JWKS."""

    def __init__(self, secret: str | None, jwks_url: str | None) -> None:
        if not secret and not jwks_url:
            raise SettingsError(
                "GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL must be set for the gateway"
            )
        self._secret = secret or None
        # PyJWKClient caches the key set and fetches again for an unknown key id.
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        secret = settings.gateway_jwt_secret
        return cls(secret.get_secret_value() if secret else None, settings.gateway_jwks_url)

    async def verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm in HMAC_ALGORITHMS and self._secret is not None:
            key: Any = self._secret
            allowed = list(HMAC_ALGORITHMS)
        elif algorithm in JWKS_ALGORITHMS and self._jwks is not None:
            key = await self._jwks_key(token)
            allowed = list(JWKS_ALGORITHMS)
        else:
            raise Unauthenticated("the bearer token's algorithm is not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=allowed,
                options={"require": ["exp", "sub"], "verify_aud": False},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the bearer token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the bearer token is not valid yet") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the bearer token is not valid ({type(exc).__name__})") from None
        return _caller(claims)

    async def _jwks_key(self, token: str) -> Any:
        assert self._jwks is not None
        try:
            # PyJWKClient fetches with urllib: keep it off the event loop.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            log.warning("auth: the JWKS at GATEWAY_JWKS_URL could not be fetched")
            raise Unauthenticated("the signing keys could not be fetched") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError):
            raise Unauthenticated("the bearer token's signing key is not known") from None
        return signing_key.key


def _caller(claims: dict[str, Any]) -> Caller:
    subject = claims.get("sub")
    try:
        user_id = uuid.UUID(subject) if isinstance(subject, str) else None
    except ValueError:
        user_id = None
    if user_id is None:
        raise Unauthenticated("the bearer token's sub is not a user id (UUID)")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("the bearer token's roles claim is not a list of strings")
    return Caller(user_id=user_id, roles=frozenset(roles))


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def unauthorized(detail: str, *, missing: bool) -> web.Response:
    response = problem(401, "Unauthorized", detail)
    challenge = f'Bearer realm="{REALM}"'
    if not missing:
        challenge += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def auth_middleware(
    verifier: TokenVerifier,
    is_public: Callable[[web.Request], bool],
    is_admin_route: Callable[[web.Request], bool],
) -> Middleware:
    @web.middleware
    async def check_bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_public(request):
            return await handler(request)
        token = bearer_token(request)
        if token is None:
            return unauthorized("this route needs a bearer token", missing=True)
        try:
            found = await verifier.verify(token)
        except Unauthenticated as exc:
            return unauthorized(str(exc), missing=False)
        if is_admin_route(request) and not found.is_admin:
            return problem(403, "Forbidden", "this route needs the admin role")
        set_caller(request, found)
        return await handler(request)

    return check_bearer
