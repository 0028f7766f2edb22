"""Simkl resolution (pure). Simkl's writes take many ids (``simkl``, ``imdb``, ``tmdb``,
``tvdb``, ``mal``, ``anidb``, ``anilist``) and would fall back on title + year by its own,
undocumented matching; so an item is sent as it is only when it carries one of those ids
(for an episode, on its show, with season and number), and otherwise resolved first:

- an id Simkl's lookup knows but its writes do not (the Trakt slug) with
  ``GET /search/id?traktslug=<slug>``;
- else a text search ``GET /search/{movie|tv|anime}?q=<title>``, taken only when exactly one
  result has the same normalised title and the same year (Simkl's search has no year filter).

The answer gives Simkl's own id (``ids.simkl_id`` in search results, ``ids.simkl`` in id
lookups), which then names the item (or, for episodes, its show). Reads are public with the
app id; the user's token goes along, and they are paced under Simkl's GET limits (10/s per
token and per client id), apart from its 1 POST/s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Literal
from uuid import UUID

from scrobble_shared.events import Content, ContentType, ExternalIds
from scrobble_shared.trackers.http import (
    AppCredentials,
    HttpRequest,
    HttpResponse,
    UserCredentials,
)
from scrobble_shared.trackers.ids import (
    Found,
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
from scrobble_shared.trackers.pace import PaceKey, app_pacing_key
from scrobble_shared.trackers.simkl.client import app_params, simkl_headers

GET_INTERVAL: Final = timedelta(seconds=0.1)  # 10 GET/s per token and per client id
ACCEPTED: Final = ("simkl", "imdb", "tmdb", "tvdb", "mal", "anidb", "anilist")
# Search paths by the type of what is looked for.
_SEARCH_TYPES: Final = {"movie": "movie", "show": "tv", "anime": "anime"}


class SimklResolver:
    service = "simkl"
    label = "Simkl"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._api_url = api_url.rstrip("/")
        self._app = app

    # --- plan ----------------------------------------------------------------------------
    def plan(self, content: Content) -> Plan:
        if content.type is ContentType.MOVIE:
            return self._named(content, content.external_ids, content.title, content.year, "item")
        if content.type in (ContentType.EPISODE, ContentType.ANIME_EPISODE):
            return self._episode(content)
        return Plan((), f"Simkl takes movies, episodes and anime, not a {content.type.value}")

    def _episode(self, content: Content) -> Plan:
        show = content.show
        anime = content.type is ContentType.ANIME_EPISODE
        if anime and present(content.external_ids, ACCEPTED):
            return Plan((Ready("anime ids Simkl accepts on the episode"),), "")
        if content.number is None or (not anime and content.season is None):
            why = "no season and episode number"
            return Plan((), unresolved_reason(self.label, content, why))
        if show is None:
            why = "no show to name it by"
            return Plan((), unresolved_reason(self.label, content, why))
        return self._named(content, show.external_ids, show.title, show.year, "show")

    def _named(
        self,
        content: Content,
        ids: ExternalIds | None,
        title: str,
        year: int | None,
        target: Literal["item", "show"],
    ) -> Plan:
        if present(ids, ACCEPTED):
            return Plan((Ready("ids Simkl accepts"),), "")
        media = _media(content)
        steps: list[Step] = []
        slug = present(ids, ("trakt_slug",)).get("trakt_slug")
        if slug is not None:
            steps.append(id_lookup(media, "traktslug", slug, target))
        if year is not None:
            steps.append(search(media, title, year, target))
        if not steps:
            why = "no id Simkl accepts and no year to match its title by"
            return Plan((), unresolved_reason(self.label, content, why))
        why = "no id Simkl accepts and no exact title/year match"
        return Plan(tuple(steps), unresolved_reason(self.label, content, why))

    # --- requests ------------------------------------------------------------------------
    def build(self, lookup: Lookup, user: UserCredentials) -> HttpRequest:
        headers = simkl_headers(self._app, user.token, json=True)
        params = app_params()
        if lookup.kind == "search":
            assert lookup.title is not None
            path = f"/search/{_SEARCH_TYPES[lookup.media]}"
            params |= {"q": lookup.title, "limit": "20"}
        else:
            assert lookup.id_type is not None
            assert lookup.id_value is not None
            path = "/search/id"
            params |= {lookup.id_type: lookup.id_value}
        return HttpRequest("GET", f"{self._api_url}{path}", headers, params=params)

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return [
            read_pace(f"simkl:user-get:{connection_id}", GET_INTERVAL),
            read_pace(app_pacing_key("simkl", app_key) + ":get", GET_INTERVAL),
        ]

    # --- answers -------------------------------------------------------------------------
    def parse(self, lookup: Lookup, response: HttpResponse) -> LookupResult:
        results = response.json()
        if results is None and response.body.strip() in (b"", b"null"):
            results = []  # nothing found can come back as an empty body or null
        if not isinstance(results, list):
            raise UnexpectedAnswer(f"a Simkl search answers a list (HTTP {response.status})")
        found: set[int] = set()
        for result in results:
            if not isinstance(result, dict):
                continue
            ids = result.get("ids")
            ids = ids if isinstance(ids, dict) else {}
            simkl_id = positive_int(ids.get("simkl_id", ids.get("simkl")))
            if simkl_id is None:
                continue
            if lookup.kind == "search":
                assert lookup.title is not None
                titles = [result.get(k) for k in ("title", "title_en", "title_romaji")]
                if not exact_match(lookup.title, lookup.year, titles, result.get("year")):
                    continue
            found.add(simkl_id)
        if len(found) == 1:
            return Found({"simkl": found.pop()})
        if len(found) > 1:
            return NotFound(f"{len(found)} items at Simkl match equally well")
        return NotFound(lookup.describe())


def _media(content: Content) -> Literal["movie", "show", "anime"]:
    if content.type is ContentType.MOVIE:
        return "movie"
    return "anime" if content.type is ContentType.ANIME_EPISODE else "show"
