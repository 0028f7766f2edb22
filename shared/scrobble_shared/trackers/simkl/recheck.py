"""Simkl's "is it there already?" (``trackers/recheck.py``): ``GET /sync/all-items/
{movies|shows|anime}?date_from=`` just before a history add, paced on the user's and the
app's GET limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from scrobble_shared.events import ContentType
from scrobble_shared.trackers.http import (
    AppCredentials,
    HttpRequest,
    HttpResponse,
    UserCredentials,
)
from scrobble_shared.trackers.ids import read_pace
from scrobble_shared.trackers.pace import PaceKey, app_pacing_key
from scrobble_shared.trackers.recheck import SAME_MOMENT, NoAnswer, close_to, same_item
from scrobble_shared.trackers.simkl.client import (
    anime_episode,
    app_params,
    movie_item,
    show_episode,
    simkl_headers,
)
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

SIMKL_GET_INTERVAL: Final = timedelta(seconds=0.1)  # 10 GET/s per token and per app


class SimklRecheck:
    """``GET /sync/all-items/{movies|shows|anime}?date_from=`` just before a history add:
    the item's watches since then (a movie's last one, each episode's)."""

    service = "simkl"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._api_url = api_url.rstrip("/")
        self._app = app

    def applies(self, work: ScrobbleWork) -> bool:
        return work.kind is WorkKind.WATCHED

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest | None:
        kind = {
            ContentType.MOVIE: "movies",
            ContentType.EPISODE: "shows",
            ContentType.ANIME_EPISODE: "anime",
        }[work.content.type]
        since = (work.occurred_at - SAME_MOMENT).astimezone(UTC)
        headers = simkl_headers(self._app, user.token)
        params = {"date_from": since.strftime("%Y-%m-%dT%H:%M:%SZ")} | app_params()
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
                same_item(entry.get("movie"), ours)
                and close_to(entry.get("last_watched_at"), work.occurred_at)
                for entry in entries_of(body, "movies")
            )
        if content.type is ContentType.EPISODE:
            show, season, number = show_episode(content)
            return episode_held(entries_of(body, "shows"), show, season, number, work.occurred_at)
        anime, episode = anime_episode(content)
        return episode_held(
            entries_of(body, "anime"),
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


def entries_of(body: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    found = body.get(kind)
    return [e for e in found if isinstance(e, Mapping)] if isinstance(found, list) else []


def episode_held(
    entries: Iterable[Mapping[str, Any]],
    show: Mapping[str, Any],
    season: int,
    number: int,
    moment: datetime,
) -> bool:
    for entry in entries:
        if not same_item(entry.get("show") or entry.get("anime"), show):
            continue
        for found_season in entry.get("seasons") or []:
            if not isinstance(found_season, Mapping) or found_season.get("number") != season:
                continue
            for episode in found_season.get("episodes") or []:
                if (
                    isinstance(episode, Mapping)
                    and episode.get("number") == number
                    and close_to(episode.get("watched_at"), moment)
                ):
                    return True
    return False
