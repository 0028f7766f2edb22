"""Simkl history import (pure): ``GET /sync/activities`` first, then
``GET /sync/all-items/{movies|shows|anime}?date_from=`` for each kind of library.

Simkl asks clients to sync this way: activities say when anything last changed, and an
incremental sync reads only what changed since its last one (``date_from``; polling
all-items without it risks suspension). Only a first import, which has no last sync, goes
without ``date_from``. When activities show nothing newer than the last import, all-items
is not called at all. All-items is not paged: one answer holds a whole library kind.

Movies carry their last watch (``last_watched_at``) and the user's rating; shows and anime
carry each watched episode with its own ``watched_at`` (asked for with
``episode_watched_at=yes``). Simkl rates shows only as a whole, so only movie ratings are
imported as ratings.
"""

from __future__ import annotations

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
    retry_after_s,
)
from scrobble_shared.trackers.ids import read_pace
from scrobble_shared.trackers.pace import PaceKey, app_pacing_key
from scrobble_shared.trackers.simkl.client import app_params, simkl_headers
from scrobble_shared.trackers.simkl.ids import GET_INTERVAL

KINDS: Final = ("movies", "shows", "anime")
_NUMERIC_IDS: Final = ("simkl", "tmdb", "tvdb", "mal", "anidb", "anilist")


class SimklReader:
    service = "simkl"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self._api_url = api_url.rstrip("/")
        self._app = app

    def start(self, ctx: JobContext) -> Cursor:
        return {"step": "activities"}

    def request(self, cursor: Cursor, ctx: JobContext) -> HttpRequest:
        headers = simkl_headers(self._app, ctx.token)
        params = app_params()
        if cursor["step"] == "activities":
            return HttpRequest("GET", f"{self._api_url}/sync/activities", headers, params=params)
        params |= {"extended": "full", "episode_watched_at": "yes"}
        if ctx.since is not None:
            params["date_from"] = iso_utc(ctx.since)
        url = f"{self._api_url}/sync/all-items/{cursor['type']}"
        return HttpRequest("GET", url, headers, params=params)

    def read(self, cursor: Cursor, response: HttpResponse, ctx: JobContext) -> Page:
        body = response.json()
        if cursor["step"] == "activities":
            if not isinstance(body, dict):
                raise UnexpectedAnswer("Simkl activities answered no object")
            changed = parse_time(body.get("all"))
            if ctx.since is not None and changed is not None and changed < ctx.since:
                return Page([], None)  # nothing changed since the last import
            return Page([], {"step": "items", "type": KINDS[0]})
        kind = str(cursor["type"])
        if body is None:  # an empty library answers null
            entries: list[Any] = []
        elif isinstance(body, dict):
            found = body.get(kind) or []
            entries = found if isinstance(found, list) else []
        else:
            raise UnexpectedAnswer(f"Simkl all-items answered no object (HTTP {response.status})")
        items: list[ImportedItem] = []
        for entry in entries:
            items += entry_items(kind, entry)
        index = KINDS.index(kind)
        after = {"step": "items", "type": KINDS[index + 1]} if index + 1 < len(KINDS) else None
        return Page(items, after)

    def judge(self, response: HttpResponse) -> Outcome | None:
        return judge_status("Simkl", response)

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        # 10 GET/s per token and per client id: the keys the id lookups use too.
        return [
            read_pace(f"simkl:user-get:{connection_id}", GET_INTERVAL),
            read_pace(app_pacing_key("simkl", app_key) + ":get", GET_INTERVAL),
        ]

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        return retry_after_s(response) if response.status == 429 else None


def simkl_ids(ids: Any) -> dict[str, Any]:
    """Simkl's ``ids`` in the event's names (numbers as numbers; the slug left out)."""
    if not isinstance(ids, dict):
        return {}
    out: dict[str, Any] = {}
    for name in _NUMERIC_IDS:
        value = positive(ids.get(name))
        if value is not None:
            out[name] = value
    imdb = text(ids.get("imdb"))
    if imdb and imdb.startswith("tt"):
        out["imdb"] = imdb
    return out


def _key(media: str, ids: dict[str, Any], title: str | None, year: int | None) -> str | None:
    if "simkl" in ids:
        return f"{media}:simkl:{ids['simkl']}"
    if ids:
        name, value = sorted(ids.items())[0]
        return f"{media}:{name}:{value}"
    if title is not None and year is not None:
        return f"{media}:title:{title.casefold()}:{year}"
    return None


def entry_items(kind: str, entry: Any) -> list[ImportedItem]:
    """The plays (and a movie's rating) of one all-items entry."""
    if not isinstance(entry, dict):
        return []
    if kind == "movies":
        return _movie_items(entry)
    obj = entry.get("show") or entry.get("anime")
    if not isinstance(obj, dict):
        return []
    ids = simkl_ids(obj.get("ids"))
    title, year = text(obj.get("title")), positive(obj.get("year"))
    show_key = _key("show", ids, title, year)
    if show_key is None:
        return []
    show = {"title": title, "year": year, "external_ids": ids}
    content_type = "anime_episode" if kind == "anime" else "episode"
    items = []
    for season in entry.get("seasons") or []:
        if not isinstance(season, dict):
            continue
        for episode in season.get("episodes") or []:
            at = parse_time(episode.get("watched_at")) if isinstance(episode, dict) else None
            number = positive(episode.get("number")) if isinstance(episode, dict) else None
            if at is None or number is None:
                continue
            season_number = positive(season.get("number"))
            items.append(
                ImportedItem(
                    kind="play",
                    content_type=content_type,  # type: ignore[arg-type]
                    item_key=clip_key(f"{show_key}:{season_number}:{number}"),
                    occurred_at=at,
                    title=title,
                    external_ids={},
                    show=show,
                    season=season_number,
                    number=number,
                    raw={"show": obj, "season": season_number, "episode": episode},
                )
            )
    return items


def _movie_items(entry: dict[str, Any]) -> list[ImportedItem]:
    movie = entry.get("movie")
    if not isinstance(movie, dict):
        return []
    ids = simkl_ids(movie.get("ids"))
    title, year = text(movie.get("title")), positive(movie.get("year"))
    key = _key("movie", ids, title, year)
    if key is None:
        return []
    items = []
    watched = parse_time(entry.get("last_watched_at"))
    raw = {k: v for k, v in entry.items() if k != "movie"} | {"movie": movie}
    common: dict[str, Any] = {
        "content_type": "movie",
        "item_key": clip_key(key),
        "title": title,
        "external_ids": ids,
        "year": year,
        "raw": raw,
    }
    if watched is not None:
        items.append(ImportedItem(kind="play", occurred_at=watched, **common))
    rating, rated = positive(entry.get("user_rating")), parse_time(entry.get("user_rated_at"))
    if rating is not None and rating <= 10 and rated is not None:
        items.append(ImportedItem(kind="rating", occurred_at=rated, rating=rating, **common))
    return items
