"""Last.fm history import (pure): ``user.getRecentTracks(user, limit=200, page, from, to)``,
newest first, paged by ``@attr.totalPages``. The now-playing entry (``@attr.nowplaying``,
no ``date``) is not a scrobble and is skipped. ``to`` is the job's ``until`` (so pages stay
put while the user keeps listening), ``from`` the last finished import's end.

A read needs no session (the user's name is enough), so the request is unsigned, with the
app's API key; it counts against the same per-key limit as every Last.fm call.

Libre.fm (GNU FM) reads the same call with two differences, which its reader is told of:
``from`` and ``to`` are strict (``time > from``), so ``from`` reaches back a second lest a
scrobble in the very second the last import ended be missed by both imports (the overlap is
imported once: items are idempotent); and a page with no scrobbles is not an empty list but
an error (``no_scrobbles_error``: its 7, "Invalid resource specified"), which then ends the
import. GNU FM counts ``totalPages`` over the whole history whatever the range, so a range
always ends on that answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from uuid import UUID

from scrobble_shared.trackers.history import (
    Cursor,
    ImportedItem,
    ImportRefused,
    JobContext,
    Page,
    UnexpectedAnswer,
    judge_status,
    mapping,
    parse_time,
    positive,
    text,
    track_play,
    unix_s,
)
from scrobble_shared.trackers.http import (
    USER_AGENT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    Outcome,
)
from scrobble_shared.trackers.lastfm.errors import (
    error_code,
    error_outcome,
    is_rate_limit,
    rate_limit_wait_s,
)
from scrobble_shared.trackers.lastfm.limits import write_keys
from scrobble_shared.trackers.pace import PaceFor, PaceKey

PAGE_LIMIT: Final = 200


class LastfmReader:
    """History of a tracker that speaks the Last.fm 2.0 protocol (Last.fm, or Libre.fm
    named by ``service`` and ``label``)."""

    def __init__(
        self,
        api_url: str,
        app: AppCredentials,
        *,
        service: str = "lastfm",
        label: str = "Last.fm",
        write_keys: Callable[[PaceFor], list[PaceKey]] = write_keys,
        strict_range: bool = False,
        no_scrobbles_error: int | None = None,
    ) -> None:
        self._api_url = api_url
        self._app = app
        self.service = service
        self._label = label
        self._write_keys = write_keys
        # ``from`` and ``to`` exclude their own second (module docstring).
        self._strict_range = strict_range
        # The error code that means "no scrobbles on this page" (module docstring).
        self._no_scrobbles_error = no_scrobbles_error

    def start(self, ctx: JobContext) -> Cursor:
        if not ctx.user_name:
            raise ImportRefused(
                f"the {self._label} user name of this connection is unknown; reconnect"
            )
        return {"page": 1}

    def request(self, cursor: Cursor, ctx: JobContext) -> HttpRequest:
        params = {
            "method": "user.getrecenttracks",
            "user": ctx.user_name or "",
            "api_key": self._app.client_id,
            "limit": str(PAGE_LIMIT),
            "page": str(cursor["page"]),
            "to": str(unix_s(ctx.until)),
            "format": "json",
        }
        if ctx.since is not None:
            params["from"] = str(unix_s(ctx.since) - (1 if self._strict_range else 0))
        return HttpRequest("GET", self._api_url, {"User-Agent": USER_AGENT}, params=params)

    def read(self, cursor: Cursor, response: HttpResponse, ctx: JobContext) -> Page:
        body = response.json()
        if self._no_scrobbles(body):
            return Page([], None)
        recent = body.get("recenttracks") if isinstance(body, dict) else None
        if not isinstance(recent, dict):
            raise UnexpectedAnswer(f"{self._label} answered without recenttracks")
        tracks = recent.get("track") or []
        if isinstance(tracks, dict):  # one track comes as an object, not a list
            tracks = [tracks]
        items = [i for i in (track_item(t) for t in tracks) if i is not None]
        attr = mapping(recent.get("@attr"))
        page, total = int(cursor["page"]), positive(attr.get("totalPages")) or 0
        after = {"page": page + 1} if page < total and tracks else None
        return Page(items, after, skipped=len(tracks) - len(items))

    def judge(self, response: HttpResponse) -> Outcome | None:
        body = response.json()
        code = error_code(body)
        if code is not None and not self._no_scrobbles(body):
            return error_outcome(code, self._label, body, response)
        return judge_status(self._label, response)

    def _no_scrobbles(self, body: Any) -> bool:
        code = error_code(body)
        return code is not None and code == self._no_scrobbles_error

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        # The limit is per API key for every call: the same key as the writes.
        return self._write_keys(PaceFor(connection_id, app_key))

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        code = error_code(response.json())
        if response.status == 429 or (code is not None and is_rate_limit(code)):
            return rate_limit_wait_s(response)
        return None


def _name(value: Any) -> str | None:
    if isinstance(value, dict):
        return text(value.get("#text")) or text(value.get("name"))
    return text(value)


def track_item(track: Any) -> ImportedItem | None:
    """One scrobble of the recent tracks; None for the now-playing entry (no ``date``)."""
    if not isinstance(track, dict):
        return None
    attr = track.get("@attr")
    if isinstance(attr, dict) and str(attr.get("nowplaying", "")).lower() == "true":
        return None
    date = track.get("date")
    at = parse_time(date.get("uts")) if isinstance(date, dict) else None
    artist, title = _name(track.get("artist")), text(track.get("name"))
    if at is None or artist is None or title is None:
        return None
    ids: dict[str, Any] = {}
    mbid = text(track.get("mbid"))
    if mbid:
        ids["musicbrainz_recording"] = mbid
    return track_play(artist, title, at, ids, _name(track.get("album")), track)
