"""Libre.fm's API: the Last.fm fake's methods, checks and signatures under Libre.fm's
credentials, with GNU FM's own rules where it answers otherwise (read in foocorp/gnu-fm:
``nixtape/2.0/index.php``, ``api/TrackXML.php``, ``api/UserXML.php``,
``scrobble-utils.php``):

- every error comes with HTTP 200; as ``{"error": 6, "message": ...}`` when the method
  refused the call (``report_failure``), as ``{"error": {"code": "7", "#text": ...}}``
  when the method's own answer was an error (``XML::error`` through its JSON encoder):
  :class:`MethodError`;
- ignored scrobbles: 1 and 2 an empty artist or title (no filter lists), 3 a timestamp
  more than 5 minutes ahead, 4 one before 1009000000 (2001-12-22), 91 a scrobble it holds
  already (same user, artist, title and time); no daily or age limit;
- ``track.love`` of a track it does not know (never scrobbled or played now there), or one
  already loved: error 7; a love taken answers ``{"lfm": {"#text": "", "status": "ok"}}``;
- ``auth.getSession`` without a token: 4; an unknown, used or unapproved one: 14;
- ``user.getRecentTracks``: ``from`` and ``to`` strict; a page without scrobbles is error
  7; ``totalPages`` counts the whole history whatever the range, and no ``total``.
"""

import math
from typing import Any, ClassVar

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.http import json_response
from scrobble_sandbox.lastfm import render
from scrobble_sandbox.lastfm.api import LastfmApi, Params
from scrobble_sandbox.lastfm.render import LastfmError
from scrobble_sandbox.librefm import LIBREFM_API_KEY, LIBREFM_API_SECRET
from scrobble_sandbox.librefm.state import LibrefmState

# GNU FM's lower bound on a scrobble's time (ignoreInput in scrobble-utils.php).
OLDEST = 1009000000
ALREADY_SCROBBLED = 91


class MethodError(LastfmError):
    """An error the method answered with (GNU FM's ``XML::error``), nested in its JSON."""


def _invalid_resource() -> MethodError:
    return MethodError(7, "Invalid resource specified")


class LibrefmApi(LastfmApi):
    api_key: ClassVar[str] = LIBREFM_API_KEY
    api_secret: ClassVar[str] = LIBREFM_API_SECRET
    ignored_text: ClassVar[dict[int, str]] = {
        1: "Artist was ignored",
        2: "Track was ignored",
        3: "Timestamp is too new",
        4: "Timestamp is too old",
        ALREADY_SCROBBLED: "Already scrobbled",
    }

    @property
    def libre(self) -> LibrefmState:
        state = self.state
        assert isinstance(state, LibrefmState)
        return state

    def failure(self, err: LastfmError, fmt: str) -> web.Response:
        if fmt == "json" and isinstance(err, MethodError):
            return json_response({"error": {"#text": err.message, "code": str(err.code)}})
        return render.failure(err, fmt, status=200)

    def ignored(self, artist: str, track: str) -> int:
        if not artist.strip():
            return 1
        if not track.strip():
            return 2
        return 0

    def scrobble_code(self, user: str, item: dict[str, str], accepted_today: int) -> int:
        code = self.ignored(item["artist"], item["track"])
        if code:
            return code
        ts = int(item["timestamp"])
        if ts > now() + 300:
            return 3
        if ts < OLDEST:
            return 4
        held = (user, item["artist"], item["track"], ts)
        if any((s.user, s.artist, s.track, s.timestamp) == held for s in self.state.scrobbles):
            return ALREADY_SCROBBLED
        return 0

    @staticmethod
    def within(timestamp: int, start: int | None, end: int | None) -> bool:
        return (start is None or timestamp > start) and (end is None or timestamp < end)

    async def get_session(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        try:
            return await super().get_session(request, params, user)
        except LastfmError as err:
            raise LastfmError(14 if params.get("token") else 4) from err

    async def update_now_playing(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        answer = await super().update_now_playing(request, params, user)
        if answer["nowplaying"]["ignoredMessage"]["code"] == "0":
            self.libre.know(params["artist"], params["track"])
        return answer

    async def love(self, request: web.Request, params: Params, user: str | None) -> dict[str, Any]:
        artist, track = params.get("artist", ""), params.get("track", "")
        if artist and track and not self.libre.knows(artist, track):
            raise _invalid_resource()
        if (user, artist, track) in self.state.loves:
            raise _invalid_resource()  # the Loved_Tracks insert fails
        await super().love(request, params, user)
        # ``<lfm status="ok"></lfm>`` through GNU FM's JSON encoder.
        return {"lfm": {"#text": "", "status": "ok"}}

    async def recent_tracks(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        answer = await super().recent_tracks(request, params, user)
        recent = answer["recenttracks"]
        if not [t for t in recent["track"] if "date" in t]:
            raise _invalid_resource()
        attr = recent["@attr"]
        everything = len(self.state.user_scrobbles(attr["user"]))
        attr["totalPages"] = str(math.ceil(everything / int(attr["perPage"])))
        del attr["total"]
        return answer
