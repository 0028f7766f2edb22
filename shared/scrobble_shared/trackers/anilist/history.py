"""AniList history import (pure): ``Viewer { id }``, then ``MediaListCollection(userId,
type: ANIME, chunk, perChunk: 500, sort: [UPDATED_TIME_DESC])`` chunk by chunk while
``hasNextChunk``.

AniList keeps no plays, only list entries (progress, status, score) with the moment each
last changed (``updatedAt``): an entry is imported as a ``list_entry`` at that moment, and
its score (when set) as a ``rating`` at the same moment. Chunks come most recently updated
first, so an incremental import stops at the first chunk that reaches back past ``since``.
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from scrobble_shared.trackers.anilist.client import classify_response, wait_before_next_s
from scrobble_shared.trackers.anilist.limits import write_keys
from scrobble_shared.trackers.history import (
    Cursor,
    ImportedItem,
    JobContext,
    Page,
    UnexpectedAnswer,
    mapping,
    parse_time,
    positive,
    text,
)
from scrobble_shared.trackers.http import (
    USER_AGENT,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
)
from scrobble_shared.trackers.pace import PaceFor, PaceKey

PER_CHUNK: Final = 500

VIEWER: Final = """\
query ImportViewer {
  Viewer { id name }
}"""

LIST_CHUNK: Final = """\
query ImportListChunk($userId: Int!, $chunk: Int!, $perChunk: Int!) {
  MediaListCollection(userId: $userId, type: ANIME, chunk: $chunk, perChunk: $perChunk,
                      sort: [UPDATED_TIME_DESC]) {
    hasNextChunk
    lists {
      entries {
        id mediaId status progress updatedAt
        score(format: POINT_10)
        media { id idMal episodes title { romaji english } seasonYear }
      }
    }
  }
}"""

ALL_DOCUMENTS: Final = (VIEWER, LIST_CHUNK)


class AniListReader:
    service = "anilist"

    def __init__(self, api_url: str, per_chunk: int = PER_CHUNK) -> None:
        self._api_url = api_url
        self._per_chunk = per_chunk

    def start(self, ctx: JobContext) -> Cursor:
        return {"step": "viewer"}

    def request(self, cursor: Cursor, ctx: JobContext) -> HttpRequest:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {ctx.token}",
        }
        if cursor["step"] == "viewer":
            body: dict[str, Any] = {"query": VIEWER, "variables": {}}
        else:
            variables = {
                "userId": cursor["user_id"],
                "chunk": cursor["chunk"],
                "perChunk": self._per_chunk,
            }
            body = {"query": LIST_CHUNK, "variables": variables}
        return HttpRequest("POST", self._api_url, headers, json=body)

    def read(self, cursor: Cursor, response: HttpResponse, ctx: JobContext) -> Page:
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise UnexpectedAnswer("AniList answered without data")
        if cursor["step"] == "viewer":
            viewer = data.get("Viewer")
            user_id = positive(viewer.get("id")) if isinstance(viewer, dict) else None
            if user_id is None:
                raise UnexpectedAnswer("AniList answered no Viewer id")
            return Page([], {"step": "chunk", "user_id": user_id, "chunk": 1})
        collection = data.get("MediaListCollection")
        if not isinstance(collection, dict):
            raise UnexpectedAnswer("AniList answered no MediaListCollection")
        items: list[ImportedItem] = []
        reached_since = False
        for group in collection.get("lists") or []:
            for entry in mapping(group).get("entries") or []:
                found = entry_items(entry)
                for item in found:
                    if ctx.since is not None and item.occurred_at < ctx.since:
                        reached_since = True
                    else:
                        items.append(item)
        more = collection.get("hasNextChunk") is True and not reached_since
        after = dict(cursor, chunk=int(cursor["chunk"]) + 1) if more else None
        return Page(items, after)

    def judge(self, response: HttpResponse) -> Outcome | None:
        outcome = classify_response(response)
        return None if outcome.kind is OutcomeKind.DONE else outcome

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        # 30/min per token in practice: the same key as the writes.
        return write_keys(PaceFor(connection_id, app_key))

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        return wait_before_next_s(response)


def entry_items(entry: Any) -> list[ImportedItem]:
    """A list entry (and its score as a rating) at the moment it last changed."""
    if not isinstance(entry, dict):
        return []
    media_id, at = positive(entry.get("mediaId")), parse_time(entry.get("updatedAt"))
    if media_id is None or at is None:
        return []
    media = mapping(entry.get("media"))
    titles = mapping(media.get("title"))
    title = text(titles.get("english")) or text(titles.get("romaji"))
    ids: dict[str, Any] = {"anilist": media_id}
    mal = positive(media.get("idMal"))
    if mal is not None:
        ids["mal"] = mal
    progress = entry.get("progress")
    progress = progress if isinstance(progress, int) and progress >= 0 else None
    common: dict[str, Any] = {
        "content_type": "anime_episode",
        "item_key": f"anime:anilist:{media_id}",
        "occurred_at": at,
        "title": title,
        "external_ids": ids,
        "year": positive(media.get("seasonYear")),
        "raw": entry,
    }
    items = [ImportedItem(kind="list_entry", progress=progress, **common)]
    score = entry.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool) and score >= 1:
        items.append(ImportedItem(kind="rating", rating=min(10, round(score)), **common))
    return items
