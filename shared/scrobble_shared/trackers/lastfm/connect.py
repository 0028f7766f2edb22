"""Connecting Last.fm: web auth (``scrobble_shared.trackers.connect.WebAuth``), the page at
last.fm/api/auth and the session from the signed ``auth.getSession``. A session key does
not expire and is revoked by its user on last.fm: nothing to call on disconnect."""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.connect import WebAuth
from scrobble_shared.trackers.lastfm.signature import sign

FLOW: Final = WebAuth(sign=sign)
