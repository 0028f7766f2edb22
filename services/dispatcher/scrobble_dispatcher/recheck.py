"""Is it there already? Asked of the service before work goes out again after an attempt
whose outcome nobody saw: the sender died mid-call, the answer was cut off or came after
the timeout, or Postgres was away when it came. Only for the calls the service does not
deduplicate itself: Trakt and Simkl history adds, Last.fm scrobbles. (A Trakt or Simkl
scrobble stop repeated within the hour is answered 409; ListenBrainz stores a listen once;
a rating, a love or AniList progress is set, not added.)

Found by the chaos harness (bench/chaos): answers dropped mid-way or cut with their
connection sent history adds twice.

Pure, like the clients: each service's question as a request, and what its answer says.
``delivery.py`` pays the call, paced on the service's read limits, and decides: there
already, done; not there, send; no usable answer, try again later like a failed write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from uuid import UUID

from scrobble_dispatcher.clients.base import (
    USER_AGENT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    UserCredentials,
)
from scrobble_dispatcher.clients.simkl import (
    APP_NAME,
    APP_VERSION,
    anime_episode,
    movie_item,
    show_episode,
)
from scrobble_dispatcher.clients.trakt import TraktClient, iso_utc, trakt_item
from scrobble_dispatcher.pacing import PaceKey, app_pacing_key, pacing_keys
from scrobble_dispatcher.resolve.core import read_pace
from scrobble_shared.events import ContentType
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

# Services keep times to the second (or less): an entry this close to the work's moment
# is the same watch.
SAME_MOMENT: Final = timedelta(seconds=1)
TRAKT_GET_INTERVAL: Final = timedelta(seconds=0.6)  # 500 GET per 5 minutes per user
SIMKL_GET_INTERVAL: Final = timedelta(seconds=0.1)  # 10 GET/s per token and per app


class NoAnswer(Exception):
    """The answer says nothing about whether the work is there (not 2xx, not the shape
    the service documents)."""


class Recheck(Protocol):
    """The pure part of one service's question."""

    service: str

    def applies(self, work: ScrobbleWork) -> bool:
        """Whether a repeat of this work would be kept twice by the service."""
        ...

    def build(
        self, work: ScrobbleWork, user: UserCredentials, user_name: str | None
    ) -> HttpRequest | None:
        """The question, or None when it cannot be asked (Last.fm without a user name)."""
        ...

    def holds(self, work: ScrobbleWork, response: HttpResponse) -> bool:
        """What the answer says; raises :class:`NoAnswer`."""
        ...

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]: ...


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _close(text: Any, moment: datetime) -> bool:
    found = _moment(text)
    return found is not None and abs(found - moment) <= SAME_MOMENT


def _same_ids(found: Any, ours: Mapping[str, Any]) -> bool:
    """Any id kind both name, with the same value (``949`` and ``"949"`` alike)."""
    if not isinstance(found, Mapping):
        return False
    return any(
        name in found and str(found[name]).casefold() == str(value).casefold()
        for name, value in ours.items()
    )


def _same_item(found: Any, ours: Mapping[str, Any]) -> bool:
    """The same movie or show: by an id, or by title and year when ours has no ids."""
    if not isinstance(found, Mapping):
        return False
    if ours.get("ids"):
        return _same_ids(found.get("ids"), ours["ids"])
    return (found.get("title"), found.get("year")) == (ours.get("title"), ours.get("year"))


def _json_list(response: HttpResponse) -> list[Any]:
    if not 200 <= response.status < 300:
        raise NoAnswer(f"HTTP {response.status}")
    body = response.json()
    if not isinstance(body, list):
        raise NoAnswer("not a list")
    return body


# --- Trakt -------------------------------------------------------------------------------


class TraktRecheck:
    """``GET /sync/history/{movies|episodes}`` around the moment of a history add."""

    service = "trakt"

    def __init__(self, client: TraktClient) -> None:
        self._client = client

    def applies(self, work: ScrobbleWork) -> bool:
        return work.kind is WorkKind.WATCHED

    def build(
        self, work: ScrobbleWork, user: UserCredentials, user_name: str | None
    ) -> HttpRequest | None:
        item = trakt_item(work.content)
        kind = "movies" if item.kind == "movie" else "episodes"
        params = {
            "start_at": iso_utc(work.occurred_at - SAME_MOMENT),
            "end_at": iso_utc(work.occurred_at + SAME_MOMENT),
            "limit": "100",
        }
        headers = self._client.headers(user)
        url = f"{self._client.api_url}/sync/history/{kind}"
        return HttpRequest("GET", url, headers, params=params)

    def holds(self, work: ScrobbleWork, response: HttpResponse) -> bool:
        item = trakt_item(work.content)
        for entry in _json_list(response):
            if not isinstance(entry, Mapping) or not _close(
                entry.get("watched_at"), work.occurred_at
            ):
                continue
            if item.kind == "movie" and _same_item(entry.get("movie"), item.obj):
                return True
            episode = entry.get("episode")
            if not isinstance(episode, Mapping):
                continue
            if item.kind == "episode" and _same_ids(episode.get("ids"), item.obj["ids"]):
                return True
            numbered = (episode.get("season"), episode.get("number")) == (item.season, item.number)
            if item.kind == "show" and numbered and _same_item(entry.get("show"), item.obj):
                return True
        return False

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return [read_pace(f"trakt:user-get:{connection_id}", TRAKT_GET_INTERVAL)]


# --- Simkl -------------------------------------------------------------------------------


class SimklRecheck:
    """``GET /sync/all-items/{movies|shows|anime}?date_from=`` just before a history add:
    the item's watches since then (a movie's last one, each episode's)."""

    service = "simkl"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._api_url = api_url.rstrip("/")
        self._app = app

    def applies(self, work: ScrobbleWork) -> bool:
        return work.kind is WorkKind.WATCHED

    def build(
        self, work: ScrobbleWork, user: UserCredentials, user_name: str | None
    ) -> HttpRequest | None:
        kind = {
            ContentType.MOVIE: "movies",
            ContentType.EPISODE: "shows",
            ContentType.ANIME_EPISODE: "anime",
        }[work.content.type]
        since = (work.occurred_at - SAME_MOMENT).astimezone(UTC)
        headers = {
            "User-Agent": USER_AGENT,
            "simkl-api-key": self._app.client_id,
            "Authorization": f"Bearer {user.token}",
        }
        params = {
            "date_from": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "app-name": APP_NAME,
            "app-version": APP_VERSION,
        }
        return HttpRequest("GET", f"{self._api_url}/sync/all-items/{kind}", headers, params=params)

    def holds(self, work: ScrobbleWork, response: HttpResponse) -> bool:
        if not 200 <= response.status < 300:
            raise NoAnswer(f"HTTP {response.status}")
        body = response.json()
        if body is None:
            return False  # an empty library
        if not isinstance(body, Mapping):
            raise NoAnswer("not an object")
        content = work.content
        if content.type is ContentType.MOVIE:
            ours = movie_item(content)
            return any(
                _same_item(entry.get("movie"), ours)
                and _close(entry.get("last_watched_at"), work.occurred_at)
                for entry in _entries(body, "movies")
            )
        if content.type is ContentType.EPISODE:
            show, season, number = show_episode(content)
            return _episode_held(_entries(body, "shows"), show, season, number, work.occurred_at)
        anime, episode = anime_episode(content)
        return _episode_held(
            _entries(body, "anime"),
            anime,
            episode.get("season", 1),
            episode["number"],
            work.occurred_at,
        )

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return [
            read_pace(f"simkl:user-get:{connection_id}", SIMKL_GET_INTERVAL),
            read_pace(app_pacing_key("simkl", app_key) + ":get", SIMKL_GET_INTERVAL),
        ]


def _entries(body: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    found = body.get(kind)
    return [e for e in found if isinstance(e, Mapping)] if isinstance(found, list) else []


def _episode_held(
    entries: Iterable[Mapping[str, Any]],
    show: Mapping[str, Any],
    season: int,
    number: int,
    moment: datetime,
) -> bool:
    for entry in entries:
        if not _same_item(entry.get("show") or entry.get("anime"), show):
            continue
        for found_season in entry.get("seasons") or []:
            if not isinstance(found_season, Mapping) or found_season.get("number") != season:
                continue
            for episode in found_season.get("episodes") or []:
                if (
                    isinstance(episode, Mapping)
                    and episode.get("number") == number
                    and _close(episode.get("watched_at"), moment)
                ):
                    return True
    return False


# --- Last.fm -----------------------------------------------------------------------------


class LastfmRecheck:
    """``user.getRecentTracks`` at the scrobble's second: the same artist and track there."""

    service = "lastfm"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._api_url = api_url
        self._app = app

    def applies(self, work: ScrobbleWork) -> bool:
        return work.kind is WorkKind.SCROBBLE

    def build(
        self, work: ScrobbleWork, user: UserCredentials, user_name: str | None
    ) -> HttpRequest | None:
        if not user_name:
            return None
        second = str(int(work.occurred_at.timestamp()))
        params = {
            "method": "user.getrecenttracks",
            "user": user_name,
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
        return pacing_keys("lastfm", connection_id, app_key)
