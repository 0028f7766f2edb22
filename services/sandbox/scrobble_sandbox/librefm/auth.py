"""Libre.fm's web-auth page (libre.fm/api/auth/): the Last.fm fake's, under Libre.fm's name
and API key."""

from typing import ClassVar

from scrobble_sandbox.lastfm.auth import LastfmWebAuth
from scrobble_sandbox.librefm import LIBREFM_API_KEY


class LibrefmWebAuth(LastfmWebAuth):
    service = "Libre.fm"
    prompt = "The sandbox app wants to scrobble to your Libre.fm profile."
    api_key: ClassVar[str] = LIBREFM_API_KEY
