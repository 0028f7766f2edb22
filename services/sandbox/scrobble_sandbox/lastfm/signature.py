"""The Last.fm `api_sig`: md5 of the sorted name+value pairs followed by the shared secret.

Every parameter counts except `format`, `callback` and `api_sig`. Names sort in plain byte
order, so `artist[10]` comes before `artist[1]` (`0` is 0x30, `]` is 0x5D); a natural or
numeric sort would get the signature wrong.
"""

import hashlib
import hmac
from collections.abc import Mapping

UNSIGNED = frozenset({"format", "callback", "api_sig"})


def signature_base(params: Mapping[str, str], secret: str) -> str:
    """The exact string that gets hashed (exposed so tests can show their working)."""
    names = sorted((n for n in params if n not in UNSIGNED), key=lambda n: n.encode("utf-8"))
    return "".join(name + params[name] for name in names) + secret


def sign(params: Mapping[str, str], secret: str) -> str:
    return hashlib.md5(
        signature_base(params, secret).encode("utf-8"), usedforsecurity=False
    ).hexdigest()


def verify(params: Mapping[str, str], secret: str) -> bool:
    given = params.get("api_sig", "")
    return hmac.compare_digest(given.encode("utf-8"), sign(params, secret).encode("utf-8"))
