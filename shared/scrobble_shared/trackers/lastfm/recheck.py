"""Last.fm's "is it there already?" (``trackers/recheck.py``): ``user.getRecentTracks`` at
the scrobble's second, the same artist and track there; paced like every call on the key."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from scrobble_shared.trackers.http import (
    USER_AGENT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    UserCredentials,
)
from scrobble_shared.trackers.lastfm.limits import write_keys
from scrobble_shared.trackers.pace import PaceFor, PaceKey
from scrobble_shared.trackers.recheck import NoAnswer
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork


class LastfmRecheck:
    """``user.getRecentTracks`` at the scrobble's second: the same artist and track there."""

    service = "lastfm"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._api_url = api_url
        self._app = app

    def applies(self, work: ScrobbleWork) -> bool:
        return work.kind is WorkKind.SCROBBLE

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest | None:
        if not user.account:
            return None
        second = str(int(work.occurred_at.timestamp()))
        params = {
            "method": "user.getrecenttracks",
            "user": user.account,
            "api_key": self._app.client_id,
            "from": second,
            "to": second,
            "limit": "50",
            "format": "json",
        }
        return HttpRequest("GET", self._api_url, {"User-Agent": USER_AGENT}, params=params)

    def holds(self, work: ScrobbleWork, response: HttpResponse) -> bool:
        body = response.json()
        recent = body.get("recenttracks") if isinstance(body, Mapping) else None
        if not 200 <= response.status < 300 or not isinstance(recent, Mapping):
            raise NoAnswer(f"HTTP {response.status}")
        tracks = recent.get("track") or []
        if isinstance(tracks, Mapping):
            tracks = [tracks]  # one track comes as an object, as Last.fm does
        second = str(int(work.occurred_at.timestamp()))
        artist = (work.content.artists or [""])[0].casefold()
        title = (work.content.title or "").casefold()
        for track in tracks:
            if not isinstance(track, Mapping) or (track.get("date") or {}).get("uts") != second:
                continue
            found_artist = track.get("artist")
            if isinstance(found_artist, Mapping):
                found_artist = found_artist.get("#text") or found_artist.get("name")
            same_artist = str(found_artist or "").casefold() == artist
            if same_artist and str(track.get("name") or "").casefold() == title:
                return True
        return False

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        # Last.fm's limit is per API key for every call: the writes' own key.
        return write_keys(PaceFor(connection_id, app_key))
