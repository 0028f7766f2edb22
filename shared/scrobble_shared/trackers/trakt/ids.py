"""Trakt resolution (pure). Trakt names an item, most certain first, by:

- movie: its ``trakt``, ``slug``, ``imdb`` or ``tmdb`` id, sent as it is; else a text search
  ``GET /search/movie?query=<title>&years=<year>`` taken only on an exact title + year match;
- episode: its own ``trakt`` or ``tvdb`` id; else its own ``imdb``/``tmdb`` id looked up with
  ``GET /search/{imdb|tmdb}/{id}?type=episode`` (Trakt's episodes by those ids are UNVERIFIED
  as scrobble ids, so they are turned into Trakt's own); else its show's ids with season and
  number (``{show: {ids}, episode: {season, number}}``); else the show found by a text search
  ``GET /search/show?query=&years=``, again exact, with season and number.

Searches and lookups are public reads (OAuth optional); the user's token goes along so they
count against that user's read limit (500 GET per 5 minutes), paced on its own key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final
from uuid import UUID

from scrobble_shared.events import Content, ContentType
from scrobble_shared.trackers.http import AppCredentials, HttpRequest, HttpResponse, UserCredentials
from scrobble_shared.trackers.ids import (
    Found,
    IdMap,
    Lookup,
    LookupResult,
    NotFound,
    Plan,
    Ready,
    Step,
    UnexpectedAnswer,
    exact_match,
    id_lookup,
    positive_int,
    present,
    read_pace,
    search,
    unresolved_reason,
)
from scrobble_shared.trackers.pace import PaceKey
from scrobble_shared.trackers.trakt.client import TraktClient, episode_ids, media_ids

# 500 GET per 5 minutes per user.
GET_INTERVAL: Final = timedelta(seconds=0.6)
SEARCH_LIMIT: Final = "10"
# Trakt's id names -> the event's.
_IDS: Final = {
    "trakt": "trakt",
    "slug": "trakt_slug",
    "imdb": "imdb",
    "tmdb": "tmdb",
    "tvdb": "tvdb",
}


class TraktResolver:
    service = "trakt"
    label = "Trakt"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._client = TraktClient(api_url, app)

    # --- plan ----------------------------------------------------------------------------
    def plan(self, content: Content) -> Plan:
        if content.type is ContentType.MOVIE:
            return self._movie(content)
        if content.type is ContentType.EPISODE:
            return self._episode(content)
        kind = content.type.value.replace("_", " ")
        return Plan((), f"Trakt takes movies and episodes, not {kind}")

    def _movie(self, content: Content) -> Plan:
        if media_ids(content.external_ids, with_tvdb=False):
            return Plan((Ready("movie ids Trakt accepts"),), "")
        if content.year is None:
            why = "no id Trakt accepts and no year to match its title by"
            return Plan((), unresolved_reason(self.label, content, why))
        step = search("movie", content.title, content.year, "item")
        why = "no id Trakt accepts and no exact title/year match"
        return Plan((step,), unresolved_reason(self.label, content, why))

    def _episode(self, content: Content) -> Plan:
        if episode_ids(content.external_ids):
            return Plan((Ready("episode ids Trakt accepts"),), "")
        steps: list[Step] = [
            id_lookup("episode", name, value, "item")
            for name, value in present(content.external_ids, ("imdb", "tmdb")).items()
        ]
        show = content.show
        numbered = content.season is not None and content.number is not None
        if show is not None and numbered:
            if media_ids(show.external_ids, with_tvdb=True):
                steps.append(Ready("show ids with season and number"))
            elif show.year is not None:
                steps.append(search("show", show.title, show.year, "show"))
        if not steps:
            why = "no episode id Trakt accepts, and no show with ids or title and year"
            if show is not None and not numbered:
                why = "no episode id Trakt accepts and no season and episode number"
            return Plan((), unresolved_reason(self.label, content, why))
        why = "no id Trakt accepts and no exact title/year match for its show"
        return Plan(tuple(steps), unresolved_reason(self.label, content, why))

    # --- requests ------------------------------------------------------------------------
    def build(self, lookup: Lookup, user: UserCredentials) -> HttpRequest:
        headers = self._client.headers(user)
        base = self._client.api_url
        if lookup.kind == "search":
            assert lookup.title is not None
            params = {"query": lookup.title, "years": str(lookup.year), "limit": SEARCH_LIMIT}
            return HttpRequest("GET", f"{base}/search/{lookup.media}", headers, params=params)
        return HttpRequest(
            "GET",
            f"{base}/search/{lookup.id_type}/{lookup.id_value}",
            headers,
            params={"type": lookup.media},
        )

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return [read_pace(f"trakt:user-get:{connection_id}", GET_INTERVAL)]

    # --- answers -------------------------------------------------------------------------
    def parse(self, lookup: Lookup, response: HttpResponse) -> LookupResult:
        results = response.json()
        if not isinstance(results, list):
            raise UnexpectedAnswer(f"a Trakt search answers a list (HTTP {response.status})")
        found: dict[int, IdMap] = {}
        for result in results:
            obj = result.get(lookup.media) if isinstance(result, dict) else None
            if not isinstance(obj, dict):
                continue
            if lookup.kind == "search":
                assert lookup.title is not None
                if not exact_match(lookup.title, lookup.year, [obj.get("title")], obj.get("year")):
                    continue
            ids = trakt_ids(obj.get("ids"))
            trakt_id = positive_int(ids.get("trakt"))
            if trakt_id is not None:
                found[trakt_id] = ids
        if len(found) == 1:
            [ids] = found.values()
            return Found(ids)
        if len(found) > 1:
            return NotFound(f"{len(found)} items at Trakt match equally well")
        return NotFound(lookup.describe())


def trakt_ids(ids: Any) -> IdMap:
    """Trakt's ``ids`` object in the event's names; absent and null ids left out."""
    if not isinstance(ids, dict):
        return {}
    out: IdMap = {}
    for theirs, ours in _IDS.items():
        value = ids.get(theirs)
        if isinstance(value, bool) or value is None or value == "":
            continue
        if isinstance(value, int | str):
            out[ours] = value
    return out
