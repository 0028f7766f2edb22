"""Opaque token issuing and lookup: access tokens, refresh tokens, codes and session keys."""

import secrets
from dataclasses import dataclass

from scrobble_sandbox.core.clock import now


def new_secret(prefix: str = "", nbytes: int = 24) -> str:
    """A fresh random token; the prefix only helps a human reading logs tell them apart."""
    return prefix + secrets.token_hex(nbytes)


@dataclass
class IssuedToken:
    """One token and whom it belongs to."""

    token: str
    user: str
    expires_at: float | None = None
    revoked: bool = False

    def is_live(self) -> bool:
        if self.revoked:
            return False
        return self.expires_at is None or self.expires_at > now()


class TokenStore:
    """Tokens of one kind (say, Trakt access tokens), looked up by their text."""

    def __init__(self) -> None:
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, user: str, ttl: float | None, prefix: str = "") -> IssuedToken:
        token = IssuedToken(new_secret(prefix), user, None if ttl is None else now() + ttl)
        self._tokens[token.token] = token
        return token

    def add(self, token: str, user: str, expires_at: float | None = None) -> IssuedToken:
        issued = IssuedToken(token, user, expires_at)
        self._tokens[token] = issued
        return issued

    def get(self, token: str) -> IssuedToken | None:
        return self._tokens.get(token)

    def user_for(self, token: str | None) -> str | None:
        """The owner of a live token; None for unknown, expired or revoked ones."""
        if not token:
            return None
        issued = self._tokens.get(token)
        return issued.user if issued is not None and issued.is_live() else None

    def revoke(self, token: str) -> bool:
        issued = self._tokens.get(token)
        if issued is None:
            return False
        issued.revoked = True
        return True

    def expire(self, token: str) -> bool:
        issued = self._tokens.get(token)
        if issued is None:
            return False
        issued.expires_at = now() - 1
        return True

    def clear(self) -> None:
        self._tokens.clear()

    def count_live(self) -> int:
        return sum(1 for t in self._tokens.values() if t.is_live())
