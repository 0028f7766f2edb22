"""Where a browser may be sent after connecting: only to a URL the operator allowed
(``GATEWAY_RETURN_URL_ALLOWLIST``), so the gateway is never an open redirect.

An entry is an origin (``https://app.example``: any path there) or a URL prefix
(``https://app.example/settings/``: that path and below). Scheme, host and port must match
exactly; a prefix matches at a path-segment boundary, so ``/app`` allows ``/app`` and
``/app/x`` but not ``/application``. URLs with user info, backslashes, control characters,
anything but printable ASCII (send it percent-encoded; a fullwidth solidus or a look-alike
letter in a host is how parsers are told apart) or ``.``/``..`` path segments are refused
outright: browsers and parsers disagree on what they mean, or resolve them to somewhere the
prefix does not cover. Nothing here raises, whatever the text (``https://[x`` included).

The gateway's own page for people (its connections page on ``GATEWAY_PUBLIC_URL``) is
always allowed: the page sends the browser back there after it connects an account.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_RETURN_URL_LENGTH = 2048
# Where the gateway's page shows a user's connections (page/connections.py).
PAGE_RETURN_PATH = "/connections"


@dataclass(frozen=True)
class AllowedPrefix:
    origin: tuple[str, str, int]
    path: str  # "" for a whole origin


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket, a netloc NFKC changes...
        return None


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    scheme = parts.scheme.lower()
    try:
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or not hostname:
        return None
    return scheme, hostname.lower(), port or (443 if scheme == "https" else 80)


def _suspicious(url: str) -> bool:
    return "\\" in url or any(not 0x21 <= ord(c) <= 0x7E for c in url)


def _is_dot_segment(segment: str) -> bool:
    # "/settings/../admin" starts with "/settings/" but a browser goes to "/admin".
    return segment.lower().replace("%2e", ".") in (".", "..")


def parse_allowlist(raw: str) -> list[AllowedPrefix]:
    allowed: list[AllowedPrefix] = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry or _suspicious(entry):
            continue
        parts = _split(entry)
        origin = None if parts is None else _origin(parts)
        if parts is None or origin is None or parts.username is not None:
            continue
        allowed.append(AllowedPrefix(origin, parts.path.rstrip("/")))
    return allowed


def is_allowed(url: str, allowlist: list[AllowedPrefix]) -> bool:
    if not url or len(url) > MAX_RETURN_URL_LENGTH or _suspicious(url):
        return False
    parts = _split(url)
    origin = None if parts is None else _origin(parts)
    if parts is None or origin is None:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    path = parts.path or "/"
    if any(_is_dot_segment(segment) for segment in path.split("/")):
        return False
    for entry in allowlist:
        if entry.origin != origin:
            continue
        if not entry.path or path == entry.path or path.startswith(entry.path + "/"):
            return True
    return False


def allowlist_with_page(raw: str, public_url: str) -> list[AllowedPrefix]:
    """The operator's allow-list and the gateway's own connections page."""
    return parse_allowlist(raw) + parse_allowlist(public_url.rstrip("/") + PAGE_RETURN_PATH)
