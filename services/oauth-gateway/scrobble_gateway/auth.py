"""Bearer JWTs (CONTRACTS section 4): who the caller is, checked on every route but the
public ones, and only tokens made for this gateway.

Tokens are HS256 with ``GATEWAY_JWT_SECRET``, or signed with a key from
``GATEWAY_JWKS_URL`` (RS/ES/PS/EdDSA, found by the token's ``kid``). Every key is a
``jwt.PyJWK`` pinned to one algorithm, and a token must use exactly that one: ``alg: none``,
HS256 keyed with a public key, or an ``alg`` that is not its key's are refused, never
crash. ``exp`` and ``sub`` are required; ``iss`` must be ``GATEWAY_JWT_ISSUER`` and ``aud``
(a string, or a list) must hold ``GATEWAY_JWT_AUDIENCE``, unless the HS256-only setup set
them to an empty value ("none"). ``exp``, ``nbf`` and ``iat`` are checked with
``GATEWAY_JWT_LEEWAY`` of clock skew. ``sub`` must be a UUID (the user id) and ``roles``,
when present, a list of strings.

Anything wrong with the token is a 401 with ``WWW-Authenticate: Bearer``; a non-admin on an
admin route is a 403; keys that cannot be fetched now (see ``jwks.py``) are a 503 with
``Retry-After``: we cannot tell whether the token is good. The token itself is never logged.

A request without an ``Authorization`` header may instead bring the page's session cookie
with the session's CSRF token (``page/session_auth.py``); a cookie without the token is a
403, never a pass.

What the gateway refuses to start with (SettingsError, before any I/O): neither a secret nor
a JWKS URL; with a JWKS URL, an issuer or audience that is not set to a non-empty value;
with HS256 only, an issuer or audience not set at all (set to empty, it is one warning at
start); a secret shorter than 32 bytes.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import jwt
from aiohttp import web
from aiohttp.typedefs import Middleware

from scrobble_gateway.jwks import JWKS_ALGORITHMS, JwksCache, JwksUnavailable
from scrobble_gateway.keys import Caller, set_caller
from scrobble_gateway.problems import problem
from scrobble_shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HMAC_ALGORITHM: Final = "HS256"
# RFC 7518 section 3.2: an HS256 key at least as long as the hash.
MIN_SECRET_BYTES: Final = 32
REALM: Final = "revenge-scrobble"
ISSUER_SETTING: Final = "GATEWAY_JWT_ISSUER"
AUDIENCE_SETTING: Final = "GATEWAY_JWT_AUDIENCE"


class Unauthenticated(Exception):
    """The bearer token is missing or not acceptable; the message is safe to show."""


class SessionRefused(Exception):
    """A request came with the page's session cookie but without what must go with it
    (its CSRF token), or from another site: 403; the message is safe to show."""


# Who a request without a bearer token comes from, by the page's session cookie
# (``page/session_auth.py``); None when it has no live session.
SessionCaller = Callable[[web.Request], Awaitable[Caller | None]]


# --- what a token must carry (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class TokenRules:
    """The claims a token must have: ``issuer``/``audience`` None means not checked."""

    issuer: str | None
    audience: str | None
    leeway: timedelta


def token_rules(settings: Settings) -> TokenRules:
    """The rules of the settings, or SettingsError naming what is missing or wrong."""
    secret = settings.gateway_jwt_secret.get_secret_value() if settings.gateway_jwt_secret else ""
    if not secret and not settings.gateway_jwks_url:
        raise SettingsError("GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL must be set for the gateway")
    if secret and len(secret.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"GATEWAY_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long; make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    claims = {
        ISSUER_SETTING: settings.gateway_jwt_issuer,
        AUDIENCE_SETTING: settings.gateway_jwt_audience,
    }
    if settings.gateway_jwks_url:
        missing = [name for name, value in claims.items() if not value]
        if missing:
            raise SettingsError(
                f"{' and '.join(missing)} must be set to the iss and aud of the tokens "
                "(non-empty) with GATEWAY_JWKS_URL: an identity provider signs tokens for "
                "other applications too"
            )
    else:
        unset = [name for name, value in claims.items() if value is None]
        if unset:
            raise SettingsError(
                f"{' and '.join(unset)} must be set for the gateway: the iss and aud its "
                "bearer tokens carry (set to an empty value for none)"
            )
    return TokenRules(
        issuer=settings.gateway_jwt_issuer or None,
        audience=settings.gateway_jwt_audience or None,
        leeway=settings.gateway_jwt_leeway,
    )


def unchecked_claims(rules: TokenRules) -> list[str]:
    """The settings that were set to "none", for the warning at start."""
    return [
        name
        for name, value in ((ISSUER_SETTING, rules.issuer), (AUDIENCE_SETTING, rules.audience))
        if value is None
    ]


def decode_claims(token: str, key: jwt.PyJWK, rules: TokenRules) -> dict[str, Any]:
    """The token's claims when it is signed by ``key`` with the key's own algorithm and
    meets ``rules``; else :class:`Unauthenticated` saying what is wrong."""
    required = ["exp", "sub"]
    required += ["iss"] if rules.issuer is not None else []
    required += ["aud"] if rules.audience is not None else []
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            # Without an audience to check, PyJWT would refuse every token that has one.
            options={"require": required, "verify_aud": rules.audience is not None},
            audience=rules.audience,
            issuer=rules.issuer,
            leeway=rules.leeway,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the bearer token has expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthenticated("the bearer token is not valid yet") from None
    except jwt.InvalidAudienceError:
        raise Unauthenticated("the bearer token is not for this audience") from None
    except jwt.InvalidIssuerError:
        raise Unauthenticated("the bearer token is not from the expected issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"the bearer token has no {exc.claim} claim") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthenticated("the bearer token's algorithm is not its key's") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"the bearer token is not valid ({type(exc).__name__})") from None


def caller_from_claims(claims: Mapping[str, Any]) -> Caller:
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


# --- which key checks a token (pure) --------------------------------------------------------


@dataclass(frozen=True)
class KeyFromJwks:
    """The token is to be checked with the JWKS key of this ``kid``."""

    kid: str


def hmac_key(secret: str) -> jwt.PyJWK:
    encoded = base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()
    return jwt.PyJWK({"kty": "oct", "k": encoded}, algorithm=HMAC_ALGORITHM)


def select_key(
    header: Mapping[str, Any], hmac: jwt.PyJWK | None, jwks: bool
) -> jwt.PyJWK | KeyFromJwks:
    """The key the token's header asks for, among those configured; the header is only a
    hint (it is not verified yet): the key's own algorithm is what the token must use."""
    algorithm = header.get("alg")
    if algorithm == HMAC_ALGORITHM and hmac is not None:
        return hmac
    if algorithm in JWKS_ALGORITHMS and jwks:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the bearer token names no signing key (kid)")
        return KeyFromJwks(kid)
    raise Unauthenticated("the bearer token's algorithm is not accepted")


# --- the verifier ---------------------------------------------------------------------------


class TokenVerifier:
    """Checks bearer tokens against the configured secret and/or JWKS."""

    def __init__(
        self, rules: TokenRules, *, secret: str | None = None, jwks: JwksCache | None = None
    ) -> None:
        if not secret and jwks is None:
            raise SettingsError(
                "GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL must be set for the gateway"
            )
        self.rules = rules
        self._hmac = hmac_key(secret) if secret else None
        self._jwks = jwks

    @classmethod
    def from_settings(cls, settings: Settings, *, user_agent: str | None = None) -> TokenVerifier:
        """Refuses (SettingsError) what :func:`token_rules` refuses; one warning when the
        issuer or audience is explicitly "none"."""
        rules = token_rules(settings)
        unchecked = unchecked_claims(rules)
        if unchecked:
            log.warning(
                "auth: %s set to empty: bearer tokens' %s not checked, so any token signed "
                "with GATEWAY_JWT_SECRET is accepted, whoever it was made for",
                " and ".join(unchecked),
                " and ".join("iss" if n == ISSUER_SETTING else "aud" for n in unchecked),
            )
        secret = settings.gateway_jwt_secret
        jwks = None
        if settings.gateway_jwks_url:
            jwks = JwksCache(
                settings.gateway_jwks_url,
                ttl_s=settings.gateway_jwks_cache_ttl.total_seconds(),
                refetch_interval_s=settings.gateway_jwks_refetch_interval.total_seconds(),
                headers={"User-Agent": user_agent} if user_agent else None,
            )
        return cls(rules, secret=secret.get_secret_value() if secret else None, jwks=jwks)

    async def resources(self, _: web.Application) -> AsyncIterator[None]:
        """For the app's ``cleanup_ctx``: the JWKS client opens at start, closes at stop."""
        if self._jwks is None:
            yield
            return
        async with self._jwks:
            yield

    async def verify(self, token: str) -> Caller:
        """The caller, or :class:`Unauthenticated`; :class:`JwksUnavailable` when the key
        the token needs cannot be fetched now."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        chosen = select_key(header, self._hmac, self._jwks is not None)
        if isinstance(chosen, KeyFromJwks):
            assert self._jwks is not None
            found = await self._jwks.key(chosen.kid)
            if found is None:
                raise Unauthenticated("the bearer token's signing key is not known")
            chosen_key = found
        else:
            chosen_key = chosen
        return caller_from_claims(decode_claims(token, chosen_key, self.rules))


# --- the middleware -------------------------------------------------------------------------


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


def cannot_check_tokens(retry_after_s: int) -> web.Response:
    response = problem(503, "Service Unavailable", "can't check tokens now")
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def auth_middleware(
    verifier: TokenVerifier,
    is_public: Callable[[web.Request], bool],
    is_admin_route: Callable[[web.Request], bool],
    session: SessionCaller | None = None,
) -> Middleware:
    """Bearer tokens on every route but the public ones; without an ``Authorization``
    header, the page's session (``session``) when one is given."""

    @web.middleware
    async def check_bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_public(request):
            return await handler(request)
        token = bearer_token(request)
        if token is None:
            try:
                by_session = None if session is None else await session(request)
            except SessionRefused as exc:
                return problem(403, "Forbidden", str(exc))
            if by_session is None:
                return unauthorized("this route needs a bearer token", missing=True)
            found = by_session
        else:
            try:
                found = await verifier.verify(token)
            except Unauthenticated as exc:
                return unauthorized(str(exc), missing=False)
            except JwksUnavailable as exc:
                return cannot_check_tokens(exc.retry_after_s)
        if is_admin_route(request) and not found.is_admin:
            return problem(403, "Forbidden", "this route needs the admin role")
        set_caller(request, found)
        return await handler(request)

    return check_bearer
