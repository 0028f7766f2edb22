"""PKCE (RFC 7636) as each OAuth fake's real service reads it.

The method names are case-sensitive (RFC 7636 4.3: ``S256`` and ``plain``). What a service
does with anything else, and which method it assumes when none is sent, differs:

- Trakt (its authorization server is Doorkeeper's, by its routes and error texts: an
  inference) follows the RFC: no method means ``plain``; an unknown method is refused at the
  authorize page; a code issued without a challenge cannot be redeemed with a verifier.
- Simkl (api.simkl.org, "Authorize" and "Public PKCE"): no method means ``S256``; another
  spelling (``s256``) is silently ignored, so the code is issued without a challenge.
- AniList documents no PKCE (AniList/docs issue 115): its fake reads no such parameters.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

METHODS: Final = ("S256", "plain")


class UnsupportedMethod(Exception):
    """The authorize request named a challenge method the service refuses."""


@dataclass(frozen=True)
class Policy:
    """How one service reads the PKCE parameters of its authorize page."""

    absent_method: str
    refuse_unknown_method: bool

    def read(self, challenge: str | None, method: str | None) -> tuple[str, str] | None:
        """The (challenge, method) to keep with the code; None when there is none (or the
        service ignores it); :class:`UnsupportedMethod` when the service refuses it."""
        if not challenge:
            return None
        chosen = method or self.absent_method
        if chosen in METHODS:
            return challenge, chosen
        if self.refuse_unknown_method:
            raise UnsupportedMethod(chosen)
        return None


TRAKT: Final = Policy(absent_method="plain", refuse_unknown_method=True)
SIMKL: Final = Policy(absent_method="S256", refuse_unknown_method=False)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(challenge: str, method: str | None, verifier: str | None) -> bool:
    """True when the verifier matches the challenge sent to the authorize page (a grant
    stored without a method holds a ``plain`` challenge, RFC 7636 4.3)."""
    if not verifier:
        return False
    expected = s256(verifier) if method == "S256" else verifier
    return hmac.compare_digest(
        expected.encode("ascii", "replace"), challenge.encode("ascii", "replace")
    )
