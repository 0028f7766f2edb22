"""AniList resolution (pure). AniList's writes take only its own media id, so an anime is
named, most certain first, by:

- its AniList id (on the episode or its show), sent as it is;
- its MyAnimeList id, looked up with ``Media(idMal:, type: ANIME) { id }``;
- its show's title and year, searched with ``Media(search:, type: ANIME)``: AniList answers
  its single best match, which counts only when one of its titles (romaji, English, native)
  is the title sent, normalised, and its start year is the year sent.

Lookups go to the GraphQL endpoint with the user's token and are paced on the same per-user
key as AniList writes (one limit covers every request).
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from scrobble_shared.events import Content, ContentType
from scrobble_shared.trackers.anilist.client import AniListClient, anilist_media_id, mal_media_id
from scrobble_shared.trackers.anilist.client import UnexpectedAnswer as ClientUnexpected
from scrobble_shared.trackers.anilist.client import parse_media_lookup as parse_mal_lookup
from scrobble_shared.trackers.anilist.limits import write_keys
from scrobble_shared.trackers.http import HttpRequest, HttpResponse, UserCredentials
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
    search,
    unresolved_reason,
)
from scrobble_shared.trackers.pace import PaceFor, PaceKey

# Declared String!: a null search would be "any anime" (see anilist_queries).
MEDIA_SEARCH: Final = """\
query MediaSearch($search: String!) {
  Media(search: $search, type: ANIME) {
    id idMal title { romaji english native } startDate { year }
  }
}"""


class AniListResolver:
    service = "anilist"
    label = "AniList"

    def __init__(self, api_url: str) -> None:
        self._client = AniListClient(api_url)

    def plan(self, content: Content) -> Plan:
        if content.type is not ContentType.ANIME_EPISODE:
            return Plan((), f"AniList takes anime episodes, not a {content.type.value}")
        if anilist_media_id(content) is not None:
            return Plan((Ready("AniList id"),), "")
        steps: list[Step] = []
        mal = mal_media_id(content)
        target = "show" if content.show is not None else "item"
        if mal is not None:
            steps.append(id_lookup("anime", "mal", mal, target))
        show = content.show
        if show is not None and show.year is not None:
            steps.append(search("anime", show.title, show.year, "show"))
        if not steps:
            why = "no AniList or MyAnimeList id and no title and year to search by"
            return Plan((), unresolved_reason(self.label, content, why))
        why = "no AniList id, and no match for its MyAnimeList id or exact title/year"
        return Plan(tuple(steps), unresolved_reason(self.label, content, why))

    def build(self, lookup: Lookup, user: UserCredentials) -> HttpRequest:
        if lookup.kind == "id":
            assert lookup.id_value is not None
            return self._client.build_media_lookup(int(lookup.id_value), user)
        request = self._client.build_media_lookup(0, user)
        return HttpRequest(
            request.method,
            request.url,
            request.headers,
            json={"query": MEDIA_SEARCH, "variables": {"search": lookup.title}},
        )

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return write_keys(PaceFor(connection_id, app_key))

    def parse(self, lookup: Lookup, response: HttpResponse) -> LookupResult:
        if lookup.kind == "id":
            try:
                media_id = parse_mal_lookup(response)
            except ClientUnexpected as exc:
                raise UnexpectedAnswer(str(exc)) from exc
            if media_id is None:
                return NotFound(lookup.describe())
            return Found({"anilist": media_id, "mal": int(lookup.id_value or 0)})
        media = _media(response)
        if media is None:
            return NotFound(lookup.describe())
        assert lookup.title is not None
        title = media.get("title") if isinstance(media.get("title"), dict) else {}
        assert isinstance(title, dict)
        start = media.get("startDate") if isinstance(media.get("startDate"), dict) else {}
        assert isinstance(start, dict)
        names = [title.get(k) for k in ("romaji", "english", "native")]
        media_id = positive_int(media.get("id"))
        if media_id is None or not exact_match(lookup.title, lookup.year, names, start.get("year")):
            return NotFound(lookup.describe())
        ids: IdMap = {"anilist": media_id}
        mal = positive_int(media.get("idMal"))
        if mal is not None:
            ids["mal"] = mal
        return Found(ids)


def _media(response: HttpResponse) -> dict[str, Any] | None:
    body = response.json()
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or "Media" not in data:
        raise UnexpectedAnswer(f"not a media search answer (HTTP {response.status})")
    media = data["Media"]
    return media if isinstance(media, dict) else None
