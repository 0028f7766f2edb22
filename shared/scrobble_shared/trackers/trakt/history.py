"""Trakt history import (pure): ``GET /sync/history?page&limit&start_at&end_at``, paged by
its ``X-Pagination-*`` headers (Trakt clamps ``limit`` itself, so the page count comes from
the answer, never from our arithmetic), then ``GET /sync/ratings`` once.

``end_at`` is the job's ``until``, fixed when it first ran: Trakt lists newest first, so
plays arriving during the import would otherwise push every later page down by one.
``start_at`` is the last finished import's end (incremental imports). Ratings have no date
filter at Trakt: those older than ``since`` are dropped here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final
from uuid import UUID

from scrobble_shared.trackers.history import (
    Cursor,
    ImportedItem,
    JobContext,
    Page,
    UnexpectedAnswer,
    clip_key,
    iso_utc,
    judge_status,
    parse_time,
    positive,
    text,
)
from scrobble_shared.trackers.http import (
    AppCredentials,
    HttpRequest,
    HttpResponse,
    Outcome,
    UserCredentials,
)
from scrobble_shared.trackers.ids import read_pace
from scrobble_shared.trackers.pace import PaceKey
from scrobble_shared.trackers.trakt.client import TraktClient, rate_limit_wait_s
from scrobble_shared.trackers.trakt.ids import trakt_ids

# 500 GET per 5 minutes per user: the key the id lookups use too.
GET_INTERVAL: Final = timedelta(seconds=0.6)
PAGE_LIMIT: Final = 100


class TraktReader:
    service = "trakt"

    def __init__(self, api_url: str, app: AppCredentials, page_limit: int = PAGE_LIMIT) -> None:
        self._client = TraktClient(api_url, app)
        self._limit = page_limit

    def start(self, ctx: JobContext) -> Cursor:
        return {"phase": "history", "page": 1}

    def request(self, cursor: Cursor, ctx: JobContext) -> HttpRequest:
        headers = self._client.headers(UserCredentials(ctx.token))
        base = self._client.api_url
        if cursor["phase"] == "ratings":
            return HttpRequest("GET", f"{base}/sync/ratings", headers)
        params = {
            "page": str(cursor["page"]),
            "limit": str(self._limit),
            "end_at": iso_utc(ctx.until),
        }
        if ctx.since is not None:
            params["start_at"] = iso_utc(ctx.since)
        return HttpRequest("GET", f"{base}/sync/history", headers, params=params)

    def read(self, cursor: Cursor, response: HttpResponse, ctx: JobContext) -> Page:
        body = response.json()
        if not isinstance(body, list):
            raise UnexpectedAnswer(f"Trakt answered no list (HTTP {response.status})")
        if cursor["phase"] == "ratings":
            ratings = [r for r in (rating_item(e) for e in body) if r is not None]
            fresh = [r for r in ratings if ctx.since is None or r.occurred_at >= ctx.since]
            return Page(fresh, None, skipped=len(body) - len(fresh))
        items = [i for i in (history_item(e) for e in body) if i is not None]
        page = int(cursor["page"])
        count = positive(response.header("X-Pagination-Page-Count"))
        if count is None:
            raise UnexpectedAnswer("Trakt answered without X-Pagination-Page-Count")
        after: Cursor = {"phase": "history", "page": page + 1}
        if page >= count or not body:
            after = {"phase": "ratings"}
        return Page(items, after, skipped=len(body) - len(items))

    def judge(self, response: HttpResponse) -> Outcome | None:
        outcome = judge_status("Trakt", response)
        if outcome is not None and response.status == 429:
            return Outcome.retry(outcome.reason, 429, rate_limit_wait_s(response))
        if response.status == 401:  # an expired access token: the refresh token renews it
            return Outcome.refresh("Trakt refused the access token (HTTP 401)", 401)
        return outcome

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return [read_pace(f"trakt:user-get:{connection_id}", GET_INTERVAL)]

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        return rate_limit_wait_s(response) if response.status == 429 else None


def _show(entry: dict[str, Any]) -> dict[str, Any] | None:
    show = entry.get("show")
    if not isinstance(show, dict):
        return None
    return {
        "title": text(show.get("title")),
        "year": positive(show.get("year")),
        "external_ids": trakt_ids(show.get("ids")),
    }


def history_item(entry: Any) -> ImportedItem | None:
    """One row of ``/sync/history``: a movie or an episode watched at ``watched_at``."""
    if not isinstance(entry, dict):
        return None
    at = parse_time(entry.get("watched_at"))
    kind = entry.get("type")
    obj = entry.get(kind) if kind in ("movie", "episode") else None
    if at is None or not isinstance(obj, dict):
        return None
    return _item("play", str(kind), obj, entry, at, None)


def rating_item(entry: Any) -> ImportedItem | None:
    """One row of ``/sync/ratings`` about a movie or an episode (shows and seasons are not
    items anyone plays: left out)."""
    if not isinstance(entry, dict):
        return None
    at = parse_time(entry.get("rated_at"))
    kind = entry.get("type")
    obj = entry.get(kind) if kind in ("movie", "episode") else None
    rating = positive(entry.get("rating"))
    if at is None or not isinstance(obj, dict) or rating is None or rating > 10:
        return None
    return _item("rating", str(kind), obj, entry, at, rating)


def _item(
    kind: str, media: str, obj: dict[str, Any], entry: dict[str, Any], at: Any, rating: int | None
) -> ImportedItem | None:
    ids = trakt_ids(obj.get("ids"))
    show = _show(entry) if media == "episode" else None
    season, number = positive(obj.get("season")), obj.get("number")
    if "trakt" in ids:
        key = f"{media}:trakt:{ids['trakt']}"
    elif ids:
        name, value = sorted(ids.items())[0]
        key = f"{media}:{name}:{value}"
    elif show is not None and show["external_ids"].get("trakt") and isinstance(number, int):
        key = f"episode:show:{show['external_ids']['trakt']}:{season}:{number}"
    else:
        return None
    return ImportedItem(
        kind="play" if kind == "play" else "rating",
        content_type="movie" if media == "movie" else "episode",
        item_key=clip_key(key),
        occurred_at=at,
        title=text(obj.get("title")),
        external_ids=ids,
        rating=rating,
        year=positive(obj.get("year")),
        show=show,
        season=season,
        number=number if isinstance(number, int) and not isinstance(number, bool) else None,
        raw=entry,
    )
