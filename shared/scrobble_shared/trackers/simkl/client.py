"""The Simkl client: scrobble work in, a Simkl request out; a Simkl response in, an outcome out.

Pure (no network, clock or database), after docs/EXTERNAL_APIS.md, Simkl section:

- ``START`` / ``PAUSE`` / ``SCROBBLE``: ``POST /scrobble/start|pause|stop`` with
  ``{progress, movie | show + episode{season, number} | anime + episode{number}}``.
- ``WATCHED``: ``POST /sync/history`` (``movies``, ``shows[].seasons[].episodes[]``,
  ``anime[].episodes[]``) with ``watched_at`` = when it was watched.
- ``RATING``: ``POST /sync/ratings`` with an integer 1-10. Simkl rates movies, shows and
  anime, never a single episode, so an episode's rating is unsendable rather than pinned on
  the whole show.

Items are named by every id Simkl knows (simkl, imdb, tmdb, tvdb, mal, anidb, anilist) plus
title and year, which Simkl falls back on when it knows none of the ids. Anime is the one
catch: MyAnimeList, AniList and AniDB give each season its own entry while TVDB, TMDB and
IMDb name the whole franchise, and Simkl matches whichever id it recognises first. So when an
anime carries a per-season id, only those ids go out, with the episode's number within that
entry; franchise ids alone go out with the season as well.

Simkl tokens do not expire and have no refresh: a 401 means the user must connect again.
Pacing (1 POST/s per user) is the dispatcher's job; this client only reads Retry-After.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from scrobble_shared.events import Content, ContentType, ExternalIds
from scrobble_shared.service_names import ServiceName
from scrobble_shared.trackers.http import (
    USER_AGENT,
    AppCredentials,
    Conversation,
    HttpRequest,
    HttpResponse,
    Outcome,
    Unsendable,
    UserCredentials,
    one_call,
    retry_after_s,
)
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

APP_NAME, _, APP_VERSION = USER_AGENT.split(" ", 1)[0].partition("/")


def simkl_headers(app: AppCredentials, token: str, *, json: bool = False) -> dict[str, str]:
    """The headers of a Simkl call: our app's id, the user's token and our name, and the
    JSON content type where asked."""
    typed = {"Content-Type": "application/json"} if json else {}
    return typed | {
        "User-Agent": USER_AGENT,
        "simkl-api-key": app.client_id,
        "Authorization": f"Bearer {token}",
    }


def app_params() -> dict[str, str]:
    """The app's name and version, which Simkl asks every call to carry in its query."""
    return {"app-name": APP_NAME, "app-version": APP_VERSION}


_SCROBBLE_PATHS: Final = {
    WorkKind.START: "/scrobble/start",
    WorkKind.PAUSE: "/scrobble/pause",
    WorkKind.SCROBBLE: "/scrobble/stop",
}
_SYNC_KINDS: Final = frozenset({WorkKind.WATCHED, WorkKind.RATING})
# Anime databases that give each season its own entry (simkl's anime ids do too).
_ANIME_ID_NAMES: Final = ("simkl", "mal", "anilist", "anidb")
_ID_NAMES: Final = ("simkl", "imdb", "tmdb", "tvdb", "mal", "anidb", "anilist")
_RETRY_STATUSES: Final = frozenset({408})
_MESSAGE_BUDGET: Final = 300


class SimklClient:
    """Builds Simkl requests and reads Simkl responses (the ServiceClient protocol)."""

    service: ServiceName = "simkl"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._api_url = api_url.rstrip("/")
        self._app = app

    # --- build ---------------------------------------------------------------------------
    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest:
        """The request for this work; raises :class:`Unsendable` when Simkl cannot take it."""
        path, body = _path_and_body(work)
        return HttpRequest(
            method="POST",
            url=f"{self._api_url}{path}",
            headers=simkl_headers(self._app, user.token, json=True),
            json=body,
            params=app_params(),
        )

    # --- classify ------------------------------------------------------------------------
    def steps(self, work: ScrobbleWork, user: UserCredentials) -> Conversation:
        return one_call(self, work, user)

    def classify(self, work: ScrobbleWork, response: HttpResponse) -> Outcome:
        """What Simkl's answer means for this work."""
        status = response.status
        if 200 <= status < 300:
            return _accepted(work, response)
        if status == 409:
            return Outcome.already_done(_already_reason(response), status)
        if status == 401:
            return Outcome.reconnect(f"Simkl refused the token: {_message(response)}", status)
        if status == 429:
            reason = f"Simkl rate limit reached: {_message(response)} (HTTP {status})"
            return Outcome.slow_down(reason, status, retry_after_s(response))
        if status in _RETRY_STATUSES or status >= 500:
            reason = f"Simkl is unavailable: {_message(response)} (HTTP {status})"
            return Outcome.retry(reason, status, retry_after_s(response))
        if status == 404 and _error_code(response) in ("id_err", None):
            return Outcome.permanent("not found at Simkl", status)
        return Outcome.permanent(f"Simkl refused it: {_message(response)} (HTTP {status})", status)

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        """Seconds to hold the next call: Simkl's Retry-After, when it sent one."""
        return retry_after_s(response)


# --- request bodies ----------------------------------------------------------------------
def _path_and_body(work: ScrobbleWork) -> tuple[str, dict[str, Any]]:
    if work.kind in _SCROBBLE_PATHS:
        return _SCROBBLE_PATHS[work.kind], scrobble_body(work)
    if work.kind is WorkKind.WATCHED:
        return "/sync/history", history_body(work.content, work.occurred_at)
    if work.kind is WorkKind.RATING:
        return "/sync/ratings", rating_body(work.content, work.rating, work.occurred_at)
    raise Unsendable(f"Simkl has no call for {work.kind.value} work")


def scrobble_body(work: ScrobbleWork) -> dict[str, Any]:
    """``{progress, movie | show + episode | anime + episode}`` for a scrobble call."""
    default = 100.0 if work.kind is WorkKind.SCROBBLE else 0.0
    progress = clamp_progress(work.progress_percent, default)
    content = work.content
    if content.type is ContentType.MOVIE:
        return {"progress": progress, "movie": movie_item(content)}
    if content.type is ContentType.EPISODE:
        show, season, number = show_episode(content)
        return {"progress": progress, "show": show, "episode": {"season": season, "number": number}}
    if content.type is ContentType.ANIME_EPISODE:
        anime, episode = anime_episode(content)
        return {"progress": progress, "anime": anime, "episode": episode}
    raise Unsendable(_not_video(content))


def history_body(content: Content, watched_at: datetime) -> dict[str, Any]:
    """A ``/sync/history`` body adding one watch of this movie or episode."""
    when = iso_utc(watched_at)
    if content.type is ContentType.MOVIE:
        return {"movies": [movie_item(content) | {"watched_at": when}]}
    if content.type is ContentType.EPISODE:
        show, season, number = show_episode(content)
        episodes = [{"number": number, "watched_at": when}]
        return {"shows": [show | {"seasons": [{"number": season, "episodes": episodes}]}]}
    if content.type is ContentType.ANIME_EPISODE:
        anime, episode = anime_episode(content)
        if "season" in episode:
            seasons = [{"number": episode["season"], "episodes": [_watched(episode, when)]}]
            return {"anime": [anime | {"seasons": seasons}]}
        return {"anime": [anime | {"episodes": [_watched(episode, when)]}]}
    raise Unsendable(_not_video(content))


def _watched(episode: Mapping[str, int], when: str) -> dict[str, Any]:
    return {"number": episode["number"], "watched_at": when}


def rating_body(content: Content, rating: float | None, rated_at: datetime) -> dict[str, Any]:
    """A ``/sync/ratings`` body for a movie. Simkl rates shows and anime only as a whole, and
    rating work for a show always names one of its episodes."""
    if rating is None:
        raise Unsendable("the rating work carries no rating")
    if content.type is not ContentType.MOVIE:
        if content.type in (ContentType.EPISODE, ContentType.ANIME_EPISODE):
            raise Unsendable("Simkl rates movies, shows and anime, not single episodes")
        raise Unsendable(_not_video(content))
    item = movie_item(content) | {"rating": clamp_rating(rating), "rated_at": iso_utc(rated_at)}
    return {"movies": [item]}


def movie_item(content: Content) -> dict[str, Any]:
    """``{title, year, ids}`` of a movie; Unsendable when Simkl could not find it."""
    ids = simkl_ids(content.external_ids, _ID_NAMES)
    return _named(content.title, content.year, ids, f"the movie {content.title!r}")


def show_episode(content: Content) -> tuple[dict[str, Any], int, int]:
    """The show object, season and number of a TV episode."""
    show = content.show
    if show is None:
        raise Unsendable(f"the episode {content.title!r} names no show")
    if content.season is None or content.number is None:
        raise Unsendable(f"the episode {content.title!r} of {show.title!r} has no season/number")
    ids = simkl_ids(show.external_ids, _ID_NAMES)
    return (
        _named(show.title, show.year, ids, f"the show {show.title!r}"),
        content.season,
        content.number,
    )


def anime_episode(content: Content) -> tuple[dict[str, Any], dict[str, int]]:
    """The anime object and the episode object of an anime episode (see the module doc)."""
    if content.number is None:
        raise Unsendable(f"the anime episode {content.title!r} has no episode number")
    show = content.show
    show_ids = show.external_ids if show is not None else None
    # Per-season ids may sit on the show or on the item itself; they name the season's entry.
    per_season = simkl_ids(show_ids, _ANIME_ID_NAMES) or simkl_ids(
        content.external_ids, _ANIME_ID_NAMES
    )
    episode = {"number": content.number}
    if per_season:
        ids = per_season
    else:
        ids = simkl_ids(show_ids, _ID_NAMES)
        if content.season is not None:
            episode = {"season": content.season, "number": content.number}
    if show is None:
        return _named(None, None, ids, f"the anime episode {content.title!r}"), episode
    return _named(show.title, show.year, ids, f"the anime {show.title!r}"), episode


def simkl_ids(ids: ExternalIds | None, names: tuple[str, ...]) -> dict[str, Any]:
    """The ids among ``names`` that are present, in that order."""
    if ids is None:
        return {}
    found = {name: getattr(ids, name) for name in names}
    return {name: value for name, value in found.items() if value is not None}


def _named(title: str | None, year: int | None, ids: dict[str, Any], what: str) -> dict[str, Any]:
    if not ids and (title is None or year is None):
        raise Unsendable(f"{what} has no id Simkl knows and no title and year to match it by")
    item: dict[str, Any] = {}
    if title is not None:
        item["title"] = title
    if year is not None:
        item["year"] = year
    if ids:
        item["ids"] = ids
    return item


def _not_video(content: Content) -> str:
    return f"Simkl takes movies, episodes and anime, not a {content.type.value}"


def clamp_progress(progress: float | None, default: float) -> float:
    """Progress as Simkl takes it: 0-100, two decimals."""
    value = default if progress is None else progress
    return round(min(max(value, 0.0), 100.0), 2)


def clamp_rating(rating: float) -> int:
    """A rating as Simkl takes it: a whole number 1-10."""
    return min(max(round(rating), 1), 10)


def iso_utc(moment: datetime) -> str:
    """``2026-11-20T21:04:05Z``; a naive time is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- responses ---------------------------------------------------------------------------
def _accepted(work: ScrobbleWork, response: HttpResponse) -> Outcome:
    body = response.json()
    if work.kind in _SYNC_KINDS and _has_not_found(body):
        return Outcome.permanent("not found at Simkl", response.status)
    if work.kind is WorkKind.SCROBBLE and isinstance(body, dict) and body.get("action") == "pause":
        # Simkl keeps a stop below 80 % as a pause: the play is not watched there.
        progress = body.get("progress")
        reason = f"Simkl kept the stop at {progress} % as a pause (watched from 80 %)"
        return Outcome.permanent(reason, response.status)
    return Outcome.done("accepted", response.status)


def _has_not_found(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    not_found = body.get("not_found")
    if not isinstance(not_found, dict):
        return False
    return any(isinstance(items, list) and items for items in not_found.values())


def _already_reason(response: HttpResponse) -> str:
    body = response.json()
    watched_at = body.get("watched_at") if isinstance(body, dict) else None
    if isinstance(watched_at, str):
        return f"Simkl already has this play (watched at {watched_at})"
    return "Simkl already has this play"


def _error_code(response: HttpResponse) -> str | None:
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _message(response: HttpResponse) -> str:
    """The most readable part of an error answer: its message, its error code, or its text."""
    body = response.json()
    if isinstance(body, dict):
        for key in ("message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:_MESSAGE_BUDGET]
    text = response.body.decode("utf-8", errors="replace").strip()
    return text[:_MESSAGE_BUDGET] or "no details"
