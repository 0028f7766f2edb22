"""Trakt's "is it there already?" (``trackers/recheck.py``): ``GET /sync/history/
{movies|episodes}`` around the moment of a history add, paced on the user's GET limit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Final
from uuid import UUID

from scrobble_shared.trackers.http import HttpRequest, HttpResponse, UserCredentials
from scrobble_shared.trackers.ids import read_pace
from scrobble_shared.trackers.pace import PaceKey
from scrobble_shared.trackers.recheck import SAME_MOMENT, close_to, json_list, same_ids, same_item
from scrobble_shared.trackers.trakt.client import TraktClient, iso_utc, trakt_item
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

TRAKT_GET_INTERVAL: Final = timedelta(seconds=0.6)  # 500 GET per 5 minutes per user


class TraktRecheck:
    """``GET /sync/history/{movies|episodes}`` around the moment of a history add."""

    service = "trakt"

    def __init__(self, client: TraktClient) -> None:
        self._client = client

    def applies(self, work: ScrobbleWork) -> bool:
        return work.kind is WorkKind.WATCHED

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest | None:
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
        for entry in json_list(response):
            if not isinstance(entry, Mapping) or not close_to(
                entry.get("watched_at"), work.occurred_at
            ):
                continue
            if item.kind == "movie" and same_item(entry.get("movie"), item.obj):
                return True
            episode = entry.get("episode")
            if not isinstance(episode, Mapping):
                continue
            if item.kind == "episode" and same_ids(episode.get("ids"), item.obj["ids"]):
                return True
            numbered = (episode.get("season"), episode.get("number")) == (item.season, item.number)
            if item.kind == "show" and numbered and same_item(entry.get("show"), item.obj):
                return True
        return False

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return [read_pace(f"trakt:user-get:{connection_id}", TRAKT_GET_INTERVAL)]
