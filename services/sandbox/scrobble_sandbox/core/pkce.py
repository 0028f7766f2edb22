"""PKCE (RFC 7636) verification for the OAuth fakes."""

import base64
import hashlib
import hmac


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(challenge: str, method: str | None, verifier: str | None) -> bool:
    """True when the verifier matches the challenge sent to the authorize page."""
    if not verifier:
        return False
    expected = s256(verifier) if (method or "plain").upper() == "S256" else verifier
    return hmac.compare_digest(expected, challenge)
