"""Last.fm's ``api_sig``, shared by the dispatcher (scrobbles) and the gateway (web auth).

MD5 of every name+value except ``format``, ``callback`` and ``api_sig``, names in plain byte
order (``artist[10]`` before ``artist[1]``), followed by the shared secret, all as UTF-8.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

# Left out of the signature, as Last.fm leaves them out when it checks it.
UNSIGNED: Final = frozenset({"format", "callback", "api_sig"})


def sign(params: Mapping[str, str], secret: str) -> str:
    """The ``api_sig`` of ``params`` under the app's shared secret."""
    names = sorted((n for n in params if n not in UNSIGNED), key=lambda n: n.encode("utf-8"))
    base = "".join(name + params[name] for name in names) + secret
    return hashlib.md5(base.encode("utf-8"), usedforsecurity=False).hexdigest()
