"""The address of a user's own tracker server (a tracker each user runs themselves): what
the gateway and the dispatcher will call with the user's token, so it is checked before it
is kept.

Refused: anything but an absolute http(s) URL of printable ASCII with a host; user info in
it (a password in a URL ends up in logs); and hosts that are no server a person runs: the
link-local range, where cloud providers answer instance metadata (169.254.0.0/16, fe80::/10),
and the unspecified address. Private and loopback addresses are allowed on purpose: a
self-hosted server is usually on the same network as this install (operators who expose the
gateway to strangers should know that users can make it call addresses on that network;
docs/security.md says so).
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

MAX_LENGTH: Final = 2048


def refused_server_address(url: str) -> str | None:
    """Why ``url`` cannot be a server address, or None when it can."""
    if len(url) > MAX_LENGTH or not url.isascii() or not url.isprintable() or " " in url:
        return "must be an http:// or https:// address of printable ASCII"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port  # raises for a port that is no number
    except ValueError:
        return "is not an address (it does not parse)"
    del port
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http:// or https:// address with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if parts.query or parts.fragment:
        return "must be the server's address, without a query or fragment"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: resolved when called
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        return "must be a server's address, not a link-local, multicast or unspecified one"
    return None
