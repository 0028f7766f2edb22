"""The Libre.fm fake: the Last.fm fake's wiring with Libre.fm's API, page, credentials and
answers. libre.fm is one host: the API at ``/2.0/``, the web-auth page at ``/api/auth/``."""

from dataclasses import dataclass
from typing import ClassVar

from aiohttp import web

from scrobble_sandbox.core.pages import message_page
from scrobble_sandbox.core.ratelimit import Verdict
from scrobble_sandbox.credentials import app_env
from scrobble_sandbox.lastfm.api import LastfmApi
from scrobble_sandbox.lastfm.auth import LastfmWebAuth
from scrobble_sandbox.lastfm.fake import LastfmFake, LastfmRateLimits
from scrobble_sandbox.lastfm.state import LastfmState
from scrobble_sandbox.librefm import LIBREFM_API_KEY, LIBREFM_API_SECRET
from scrobble_sandbox.librefm.api import LibrefmApi
from scrobble_sandbox.librefm.auth import LibrefmWebAuth
from scrobble_sandbox.librefm.state import LibrefmState

PREFIX = "/librefm"


@dataclass
class LibrefmRateLimits(LastfmRateLimits):
    """None published and none in GNU FM's code; the protocol's 5 calls per second per API
    key (UNVERIFIED, as the pace our dispatcher keeps), answered as a proxy would."""


class LibrefmFake(LastfmFake):
    name = "librefm"
    # One host: the API's prefix is the longer one, so every other path is the site's.
    prefixes: ClassVar[dict[str, str]] = {"api": f"{PREFIX}/2.0", "auth": PREFIX}
    base_paths: ClassVar[dict[str, str]] = {
        "api": f"{PREFIX}/2.0/",  # https://libre.fm/2.0/
        "auth": f"{PREFIX}/api/auth/",  # https://libre.fm/api/auth/
    }
    env_values: ClassVar[dict[str, str]] = app_env(
        "LIBREFM", LIBREFM_API_KEY, LIBREFM_API_SECRET, api_key=True
    )
    state_type: type[LastfmState] = LibrefmState
    limits_type = LibrefmRateLimits
    api_type: ClassVar[type[LastfmApi]] = LibrefmApi
    web_auth_type: ClassVar[type[LastfmWebAuth]] = LibrefmWebAuth

    def add_routes(self, router: web.UrlDispatcher) -> None:
        self.api.add_routes(router, PREFIX)
        self.web_auth.add_routes(router, PREFIX)

    def rate_limited_response(self, request: web.Request, verdict: Verdict) -> web.StreamResponse:
        # GNU FM has no error 29: what says "slower" is the web server in front of it.
        return message_page("429 Too Many Requests", "Slow down.", status=429)

    def server_error_response(self, request: web.Request, status: int) -> web.StreamResponse:
        # The web server's own page when the PHP behind it fails, not a protocol error.
        return message_page(f"{status} Server Error", "The server could not answer.", status)
