"""Last.fm API methods: auth, now playing, scrobble batches, love, recent tracks.

Another tracker speaking the protocol (Libre.fm) is this API with its own credentials
(``api_key``, ``api_secret``) and its own rules where it answers otherwise (the methods a
subclass overrides: ``failure``, ``ignored``, ``scrobble_code``, ``within``).
"""

import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

from aiohttp import web

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.fake import RAW_BODY_KEY, USER_KEY
from scrobble_sandbox.core.service import ServiceFake, ServicePart
from scrobble_sandbox.core.tokens import new_secret
from scrobble_sandbox.credentials import LASTFM_API_KEY, LASTFM_API_SECRET
from scrobble_sandbox.lastfm import render, signature
from scrobble_sandbox.lastfm.render import LastfmError
from scrobble_sandbox.lastfm.state import TOKEN_TTL, AuthToken, LastfmState, Scrobble

MAX_BATCH = 50
MAX_RECENT_LIMIT = 200
_INDEXED = re.compile(r"^([A-Za-z]+)\[(\d+)\]$")
_SCROBBLE_FIELDS = (
    "artist",
    "track",
    "timestamp",
    "album",
    "albumArtist",
    "mbid",
    "duration",
    "trackNumber",
    "chosenByUser",
)

Params = dict[str, str]
MethodImpl = Callable[[web.Request, Params, str | None], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class MethodSpec:
    impl: MethodImpl
    post_only: bool = False
    signed: bool = False
    session: bool = False


async def request_params(request: web.Request) -> Params:
    """POST parameters come from the urlencoded body only; GET ones from the query."""
    if request.method == "POST":
        if request.content_type != "application/x-www-form-urlencoded":
            return {}
        form = await request.post()
        return {k: str(v) for k, v in form.items()}
    return dict(request.query)


def response_format(request: web.Request, params: Params) -> str:
    return params.get("format") or request.query.get("format", "xml")


def requested_format(request: web.Request) -> str:
    """The format asked for, read without awaiting (for answers made before the handler)."""
    fields: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        raw: bytes = request.get(RAW_BODY_KEY, b"")
        fields = dict(parse_qsl(raw.decode("utf-8", errors="replace")))
    return fields.get("format") or request.query.get("format", "xml")


def corrected(value: str) -> dict[str, str]:
    return {"corrected": "0", "#text": value}


class LastfmApi(ServicePart[LastfmState]):
    # The app credentials calls must carry and sign with.
    api_key: ClassVar[str] = LASTFM_API_KEY
    api_secret: ClassVar[str] = LASTFM_API_SECRET
    # What each ignoredMessage code says.
    ignored_text: ClassVar[dict[int, str]] = {
        1: "Artist was ignored",
        2: "Track was ignored",
        3: "Timestamp was too old",
        4: "Timestamp was too new",
        5: "Daily scrobble limit exceeded",
    }

    def __init__(self, fake: ServiceFake[LastfmState, Any]) -> None:
        super().__init__(fake)
        self.methods: dict[str, MethodSpec] = {
            "auth.gettoken": MethodSpec(self.get_token, signed=True),
            "auth.getsession": MethodSpec(self.get_session, signed=True),
            "track.updatenowplaying": MethodSpec(
                self.update_now_playing, post_only=True, signed=True, session=True
            ),
            "track.scrobble": MethodSpec(self.scrobble, post_only=True, signed=True, session=True),
            "track.love": MethodSpec(self.love, post_only=True, signed=True, session=True),
            "track.unlove": MethodSpec(self.unlove, post_only=True, signed=True, session=True),
            "user.getrecenttracks": MethodSpec(self.recent_tracks),
            "user.getinfo": MethodSpec(self.user_info),
        }

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        for path in (f"{prefix}/2.0/", f"{prefix}/2.0"):
            router.add_get(path, self.handle)
            router.add_post(path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        params = await request_params(request)
        fmt = response_format(request, params)
        try:
            return render.ok(await self.dispatch(request, params), fmt)
        except LastfmError as err:
            return self.failure(err, fmt)

    def failure(self, err: LastfmError, fmt: str) -> web.Response:
        """An error's answer, in the format asked for."""
        return render.failure(err, fmt)

    async def dispatch(self, request: web.Request, params: Params) -> dict[str, Any]:
        """Check in the order Last.fm does: method, key, HTTP verb, signature, session."""
        spec = self.methods.get(params.get("method", "").lower())
        if spec is None:
            raise LastfmError(3)
        if params.get("api_key") != self.api_key:
            raise LastfmError(10)
        if spec.post_only and request.method != "POST":
            raise LastfmError(3, "Invalid Method - This method must be called with POST")
        if spec.signed and not signature.verify(params, self.api_secret):
            raise LastfmError(13)
        user: str | None = None
        if spec.session:
            user = self.state.sessions.user_for(params.get("sk"))
            if user is None:
                raise LastfmError(9)
            request[USER_KEY] = user
        return await spec.impl(request, params, user)

    # --- auth ------------------------------------------------------------------------------
    async def get_token(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        token = new_secret("lt", 16)
        self.state.tokens[token] = AuthToken(created=now())
        return {"token": token}

    async def get_session(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        if not params.get("token"):
            raise LastfmError(6, "Invalid parameters - token is required")
        token = self.state.tokens.get(params["token"])
        if token is None:
            raise LastfmError(4, "Invalid authentication token supplied")
        if token.used or token.created + TOKEN_TTL < now():
            raise LastfmError(15)
        if token.user is None:
            raise LastfmError(14)
        token.used = True
        session = self.state.sessions.issue(token.user, None, "sk")
        self.state.users.add(token.user)
        request[USER_KEY] = token.user
        return {"session": {"name": token.user, "key": session.token, "subscriber": 0}}

    # --- writes ----------------------------------------------------------------------------
    async def update_now_playing(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        assert user is not None
        artist, track = params.get("artist"), params.get("track")
        if artist is None or track is None:
            raise LastfmError(6, "Invalid parameters - artist and track are required")
        code = self.ignored(artist, track)
        if code == 0:
            self.state.now_playing[user] = {
                "artist": artist,
                "track": track,
                "album": params.get("album", ""),
                "duration": params.get("duration", ""),
                "at": now(),
            }
        return {
            "nowplaying": {
                "artist": corrected(artist),
                "track": corrected(track),
                "album": corrected(params.get("album", "")),
                "albumArtist": corrected(params.get("albumArtist", "")),
                "ignoredMessage": {"code": str(code), "#text": self.ignored_text.get(code, "")},
            }
        }

    def ignored(self, artist: str, track: str) -> int:
        """The ignoredMessage code for this artist and title (0: taken)."""
        if not artist.strip() or artist.strip().lower() in self.state.filtered_artists:
            return 1
        if not track.strip() or track.strip().lower() in self.state.filtered_tracks:
            return 2
        return 0

    def _batch(self, params: Params) -> list[dict[str, str]]:
        """Group `artist[i]`-style fields by index; plain `artist` counts as index 0."""
        by_index: dict[int, dict[str, str]] = {}
        for name, value in params.items():
            match = _INDEXED.match(name)
            if match and match.group(1) in _SCROBBLE_FIELDS:
                by_index.setdefault(int(match.group(2)), {})[match.group(1)] = value
        if not by_index and "artist" in params:
            by_index[0] = {f: params[f] for f in _SCROBBLE_FIELDS if f in params}
        if not by_index:
            raise LastfmError(6, "Invalid parameters - no scrobbles given")
        if len(by_index) > MAX_BATCH or max(by_index) >= MAX_BATCH:
            raise LastfmError(6, f"Invalid parameters - at most {MAX_BATCH} scrobbles per call")
        batch = []
        for index in sorted(by_index):
            item = by_index[index]
            for required in ("artist", "track", "timestamp"):
                if required not in item:
                    raise LastfmError(6, f"Invalid parameters - {required}[{index}] is required")
            if not re.fullmatch(r"\d+", item["timestamp"]):
                raise LastfmError(6, f"Invalid parameters - timestamp[{index}] is not a number")
            batch.append(item)
        return batch

    def scrobble_code(self, user: str, item: dict[str, str], accepted_today: int) -> int:
        """The ignoredMessage code for one scrobble of a batch (0: taken)."""
        code = self.ignored(item["artist"], item["track"])
        if code:
            return code
        ts, at = int(item["timestamp"]), now()
        if ts < at - self.state.max_age:
            return 3
        if ts > at + self.state.future_tolerance:
            return 4
        if accepted_today >= self.state.daily_limit:
            return 5
        return 0

    async def scrobble(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        assert user is not None
        batch = self._batch(params)
        day_start = math.floor(now() / 86400) * 86400
        today = sum(
            1 for s in self.state.scrobbles if s.user == user and s.received_at >= day_start
        )
        results, accepted = [], 0
        for item in batch:
            code = self.scrobble_code(user, item, today + accepted)
            if code == 0:
                accepted += 1
                self.state.scrobbles.append(
                    Scrobble(
                        user=user,
                        artist=item["artist"],
                        track=item["track"],
                        timestamp=int(item["timestamp"]),
                        album=item.get("album", ""),
                        album_artist=item.get("albumArtist", ""),
                        mbid=item.get("mbid", ""),
                        duration=item.get("duration", ""),
                        track_number=item.get("trackNumber", ""),
                        chosen_by_user=item.get("chosenByUser", ""),
                    )
                )
            results.append(
                {
                    "artist": corrected(item["artist"]),
                    "album": corrected(item.get("album", "")),
                    "track": corrected(item["track"]),
                    "albumArtist": corrected(item.get("albumArtist", "")),
                    "timestamp": item["timestamp"],
                    "ignoredMessage": {"code": str(code), "#text": self.ignored_text.get(code, "")},
                }
            )
        # As the real service does: one scrobble is an object, several are a list.
        scrobble: Any = results[0] if len(results) == 1 else results
        return {
            "scrobbles": {
                "scrobble": scrobble,
                "@attr": {"accepted": accepted, "ignored": len(results) - accepted},
            }
        }

    async def love(self, request: web.Request, params: Params, user: str | None) -> dict[str, Any]:
        assert user is not None
        artist, track = params.get("artist", ""), params.get("track", "")
        if not artist or not track:
            raise LastfmError(6, "Invalid parameters - artist and track are required")
        self.state.loves[(user, artist, track)] = now()
        return {}

    async def unlove(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        assert user is not None
        self.state.loves.pop((user, params.get("artist", ""), params.get("track", "")), None)
        return {}

    # --- reads -----------------------------------------------------------------------------
    def _user(self, params: Params) -> str:
        name = params.get("user", "")
        if not name:
            raise LastfmError(6, "Invalid parameters - user is required")
        for known in self.state.users:
            if known.lower() == name.lower():
                return known
        raise LastfmError(6, "User not found")

    async def recent_tracks(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        owner = self._user(params)
        try:
            limit = min(max(1, int(params.get("limit") or 50)), MAX_RECENT_LIMIT)
            page = max(1, int(params.get("page") or 1))
            start = int(params["from"]) if params.get("from") else None
            end = int(params["to"]) if params.get("to") else None
        except ValueError as exc:
            raise LastfmError(6, f"Invalid parameters - {exc}") from exc
        extended = params.get("extended") == "1"
        items = [
            s for s in self.state.user_scrobbles(owner) if self.within(s.timestamp, start, end)
        ]
        total = len(items)
        tracks = [
            self._track_json(owner, s, extended) for s in items[(page - 1) * limit : page * limit]
        ]
        playing = self.state.now_playing.get(owner)
        if page == 1 and end is None and playing is not None and playing["at"] > now() - 600:
            tracks.insert(0, self._now_playing_json(playing, extended))
        attr = {
            "user": owner,
            "page": str(page),
            "perPage": str(limit),
            "totalPages": str(math.ceil(total / limit)),
            "total": str(total),
        }
        return {"recenttracks": {"track": tracks, "@attr": attr}}

    @staticmethod
    def within(timestamp: int, start: int | None, end: int | None) -> bool:
        """Whether a scrobble falls in ``from``..``to`` (both ends included, as Last.fm)."""
        return (start is None or timestamp >= start) and (end is None or timestamp <= end)

    def _artist_json(self, name: str, extended: bool) -> dict[str, Any]:
        if extended:
            return {"url": _music_url(name), "name": name, "image": [], "mbid": ""}
        return {"mbid": "", "#text": name}

    def _track_json(self, owner: str, s: Scrobble, extended: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "artist": self._artist_json(s.artist, extended),
            "streamable": "0",
            "image": [],
            "mbid": s.mbid,
            "album": {"mbid": "", "#text": s.album},
            "name": s.track,
            "url": _music_url(s.artist, s.track),
            "date": {
                "uts": str(s.timestamp),
                "#text": time.strftime("%d %b %Y, %H:%M", time.gmtime(s.timestamp)),
            },
        }
        if extended:
            out["loved"] = "1" if (owner, s.artist, s.track) in self.state.loves else "0"
        return out

    def _now_playing_json(self, playing: dict[str, Any], extended: bool) -> dict[str, Any]:
        return {
            "artist": self._artist_json(playing["artist"], extended),
            "streamable": "0",
            "image": [],
            "mbid": "",
            "album": {"mbid": "", "#text": playing["album"]},
            "name": playing["track"],
            "url": _music_url(playing["artist"], playing["track"]),
            "@attr": {"nowplaying": "true"},
        }

    async def user_info(
        self, request: web.Request, params: Params, user: str | None
    ) -> dict[str, Any]:
        if not params.get("user"):
            session_user = self.state.sessions.user_for(params.get("sk"))
            if session_user is not None:
                params = dict(params, user=session_user)
        owner = self._user(params)
        count = sum(1 for s in self.state.scrobbles if s.user == owner)
        return {
            "user": {
                "name": owner,
                "realname": "",
                "url": f"https://www.last.fm/user/{quote(owner)}",
                "playcount": str(count),
                "subscriber": "0",
                "type": "user",
            }
        }


def _music_url(artist: str, track: str | None = None) -> str:
    url = f"https://www.last.fm/music/{quote(artist)}"
    return url if track is None else f"{url}/_/{quote(track)}"
