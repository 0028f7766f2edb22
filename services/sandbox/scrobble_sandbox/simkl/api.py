"""Simkl API routes: app id and token checks, scrobble, sync history/ratings, activities,
all-items, and the catalogue reads: text search and id lookup."""

import zlib
from collections import defaultdict
from typing import Any

from aiohttp import web

from scrobble_sandbox.core.clock import iso_utc, now, parse_iso
from scrobble_sandbox.core.http import json_response
from scrobble_sandbox.core.items import CatalogItem, is_int, is_number
from scrobble_sandbox.core.scrobbling import ScrobbleApi, objects, watched_at
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import SIMKL_CLIENT_ID
from scrobble_sandbox.simkl.state import GROUPS, Kind, SimklRating, SimklState, WatchEvent

ALL_ITEMS_TYPES: dict[str, Kind] = {"movies": "movie", "shows": "show", "anime": "anime"}
# Text search paths -> catalogue types, and the endpoint_type each result carries.
SEARCH_TYPES = {"movie": ("movie", "movies"), "tv": ("show", "tv"), "anime": ("anime", "anime")}
LOOKUP_IDS = ("simkl", "imdb", "tmdb", "tvdb", "mal", "anidb", "anilist", "traktslug")


def simkl_error(status: int, error: str, message: str) -> web.Response:
    return json_response({"error": error, "code": status, "message": message}, status=status)


def client_id_of(request: web.Request) -> str | None:
    return request.headers.get("simkl-api-key") or request.query.get("client_id")


def check_client(request: web.Request) -> web.Response | None:
    if client_id_of(request) != SIMKL_CLIENT_ID:
        return simkl_error(401, "client_id_failed", "The client_id is missing or invalid")
    return None


class SimklApi(ScrobbleApi[SimklState]):
    unparsable_body_text = "The request body is not valid JSON"
    non_object_body_text = "The request body must be an object"

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        self.add_write_routes(router, prefix)
        router.add_get(f"{prefix}/sync/activities", self.activities)
        router.add_post(f"{prefix}/sync/activities", self.activities)
        router.add_get(f"{prefix}/sync/all-items", self.all_items)
        router.add_get(f"{prefix}/sync/all-items/{{type}}", self.all_items)
        router.add_get(f"{prefix}/sync/all-items/{{type}}/{{status}}", self.all_items)
        router.add_get(f"{prefix}/users/settings", self.settings)
        router.add_post(f"{prefix}/users/settings", self.settings)
        router.add_get(f"{prefix}/search/id", self.id_lookup)
        router.add_get(f"{prefix}/search/{{type}}", self.text_search)

    def app_refusal(self, request: web.Request) -> web.Response | None:
        return check_client(request)

    def token_refusal(self) -> web.Response:
        return simkl_error(401, "user_token_failed", "The user token is missing or invalid")

    def tokens(self) -> TokenStore:
        return self.state.tokens

    def bad_request(self, message: str) -> web.Response:
        return simkl_error(400, "bad_request", message)

    # --- search ----------------------------------------------------------------------------
    async def text_search(self, request: web.Request) -> web.Response:
        """GET /search/{movie|tv|anime}?q=: titles holding every word, best first; no year
        filter (results carry their year); `page`/`limit` (at most 50)."""
        refused = self.reader(request)
        if refused is not None:
            return refused
        kind = SEARCH_TYPES.get(request.match_info["type"])
        if kind is None:
            return simkl_error(404, "not_found", "Unknown search type")
        query = request.query.get("q", "")
        if not query.strip():
            return simkl_error(400, "bad_request", "q is required")
        try:
            page = max(1, int(request.query.get("page") or 1))
            limit = min(max(1, int(request.query.get("limit") or 10)), 50)
        except ValueError:
            return simkl_error(400, "bad_request", "page and limit must be integers")
        found = self.state.catalog.search([kind[0]], query)
        chunk = found[(page - 1) * limit : page * limit]
        results = [_search_result(item, kind[1]) for _, item in chunk]
        headers = {
            "X-Pagination-Page": str(page),
            "X-Pagination-Limit": str(limit),
            "X-Pagination-Page-Count": str(max(1, -(-len(found) // limit))),
            "X-Pagination-Item-Count": str(len(found)),
        }
        return json_response(results, headers=headers)

    async def id_lookup(self, request: web.Request) -> web.Response:
        """GET /search/id?<id name>=<value>[&type=movie|show]: the items with that id, `[]`
        when none."""
        refused = self.reader(request)
        if refused is not None:
            return refused
        given = [(n, request.query[n]) for n in LOOKUP_IDS if request.query.get(n)]
        if not given:
            return simkl_error(400, "bad_request", "An id to look up is required")
        name, value = given[0]
        kind = request.query.get("type")
        types = {"movie": ["movie"], "show": ["show", "anime"]}.get(kind or "")
        items = self.state.catalog.by_id(name, value, types)
        return json_response([_lookup_result(item) for item in items])

    def episode_key(self, kind: Kind, show_key: str | None, episode: Any) -> str | None:
        if self.unknown(episode):
            return None
        return self.state.items.episode(f"{kind}-episode", show_key, episode)

    # --- scrobble --------------------------------------------------------------------------
    def _scrobble_item(
        self, body: dict[str, Any]
    ) -> tuple[Kind, str | None, str | None, dict[str, Any], int | None, int | None] | web.Response:
        """(kind, item key, library group key, echo, season, number); keys None: not found."""
        movie = body.get("movie")
        if isinstance(movie, dict):
            key = self.media_key("movie", movie)
            return "movie", key, key, {"movie": movie}, None, None
        episode = body.get("episode")
        for kind in ("show", "anime"):
            parent = body.get(kind)
            if not isinstance(parent, dict):
                continue
            if not isinstance(episode, dict) or not is_int(episode.get("number")):
                return simkl_error(400, "bad_request", f"{kind} needs episode.number")
            season = episode.get("season", 1)
            if not is_int(season):
                return simkl_error(400, "bad_request", "episode.season must be an integer")
            typed: Kind = "show" if kind == "show" else "anime"
            base = self.media_key(typed, parent)
            key = None if base is None else self.episode_key(typed, base, episode)
            echo = {kind: parent, "episode": episode}
            return typed, key, base, echo, season, episode["number"]
        return simkl_error(400, "bad_request", "A movie, or a show or anime with an episode")

    async def scrobble(self, request: web.Request, action: str) -> web.Response:
        got = await self.user_and_body(request)
        if isinstance(got, web.Response):
            return got
        user, body = got
        progress = body.get("progress")
        if not is_number(progress) or not 0 <= progress <= 100:
            return simkl_error(400, "bad_request", "progress must be a number from 0 to 100")
        resolved = self._scrobble_item(body)
        if isinstance(resolved, web.Response):
            return resolved
        kind, key, group, echo, season, number = resolved
        if key is None or group is None:
            return simkl_error(404, "id_err", "The item was not found")
        at, result_id, result_action = now(), 0, action
        if action == "stop" and progress >= 80:
            conflict = self.duplicate(user, key, at)
            if conflict is not None:
                return conflict
            item = echo.get(kind) or {}
            event = self.state.add_watch(user, kind, group, item, at, season, number)
            self.finish(user, key, at)
            result_id, result_action = event.id, "scrobble"
        else:
            # Below 80% a stop is saved as a pause, like Trakt.
            result_action = "pause" if action == "stop" else action
            self.state.playback[(user, key)] = float(progress)
            self.state.touch(user, kind, "playback")
        self.log_scrobble(user, action, result_action, progress, key, at)
        return json_response(
            {"id": result_id, "action": result_action, "progress": progress} | echo, status=201
        )

    # --- history and ratings ---------------------------------------------------------------
    def store_history(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        at = now()
        added = {"movies": 0, "shows": 0, "episodes": 0}
        not_found: dict[str, list[Any]] = {"movies": [], "shows": [], "episodes": []}
        for movie in objects(body, "movies"):
            key = self.media_key("movie", movie)
            if key is None:
                not_found["movies"].append(movie)
                continue
            item = {k: v for k, v in movie.items() if k != "watched_at"}
            self.state.add_watch(user, "movie", key, item, watched_at(movie, at))
            added["movies"] += 1
        for plural, kind in (("shows", "show"), ("anime", "anime")):
            typed: Kind = "show" if kind == "show" else "anime"
            for show in objects(body, plural):
                key = self.media_key(typed, show)
                if key is None:
                    not_found["shows"].append(show)
                    continue
                item = {
                    k: v for k, v in show.items() if k not in ("watched_at", "seasons", "episodes")
                }
                show_when = watched_at(show, at)
                episodes = [
                    (s, e) for s in objects(show, "seasons") for e in objects(s, "episodes")
                ]
                episodes += [({"number": 1}, e) for e in objects(show, "episodes")]
                added["shows"] += 1
                for season, ep in episodes:
                    if not is_int(season.get("number")) or not is_int(ep.get("number")):
                        not_found["episodes"].append(ep)
                        continue
                    self.episode_key(typed, key, ep | {"season": season["number"]})
                    when = watched_at(ep, watched_at(season, show_when))
                    self.state.add_watch(
                        user, typed, key, item, when, season["number"], ep["number"]
                    )
                    added["episodes"] += 1
        for ep in objects(body, "episodes"):
            ep_key = self.episode_key("show", None, ep)
            if ep_key is None:
                not_found["episodes"].append(ep)
                continue
            item = {k: v for k, v in ep.items() if k != "watched_at"}
            self.state.add_watch(user, "show", ep_key, item, watched_at(ep, at))
            added["episodes"] += 1
        return {"added": added, "not_found": not_found}

    async def add_ratings(self, request: web.Request) -> web.Response:
        got = await self.user_and_body(request)
        if isinstance(got, web.Response):
            return got
        user, body = got
        at = now()
        added = {"movies": 0, "shows": 0}
        not_found: dict[str, list[Any]] = {"movies": [], "shows": []}
        ratings: list[SimklRating] = []
        try:
            groups = [
                (p, k, o)
                for p, k in (("movies", "movie"), ("shows", "show"), ("anime", "anime"))
                for o in objects(body, p)
            ]
            for plural, kind, obj in groups:
                rating = obj.get("rating")
                if not is_int(rating) or not 1 <= rating <= 10:
                    return simkl_error(400, "bad_request", "rating must be an integer 1-10")
                bucket = "movies" if plural == "movies" else "shows"
                typed: Kind = (
                    "movie" if kind == "movie" else ("show" if kind == "show" else "anime")
                )
                key = self.media_key(typed, obj)
                if key is None:
                    not_found[bucket].append(obj)
                    continue
                rated_at = parse_iso(obj["rated_at"]) if "rated_at" in obj else at
                item = {k: v for k, v in obj.items() if k not in ("rating", "rated_at")}
                ratings.append(SimklRating(user, typed, key, item, rating, rated_at))
                added[bucket] += 1
        except (ValueError, TypeError) as exc:
            return simkl_error(400, "bad_request", str(exc))
        for r in ratings:
            self.state.ratings[(user, f"{r.kind}:{r.key}")] = r
            self.state.touch(user, r.kind, "rated_at")
        return json_response({"added": added, "not_found": not_found}, status=201)

    # --- reads -----------------------------------------------------------------------------
    async def activities(self, request: web.Request) -> web.Response:
        user = self.guard(request)
        if isinstance(user, web.Response):
            return user
        base = self.state.created_at

        def stamp(group: str, what: str) -> str:
            return iso_utc(self.state.activity.get((user, group, what), base), millis=False)

        show_fields = (
            "rated_at",
            "playback",
            "plantowatch",
            "watching",
            "completed",
            "hold",
            "dropped",
            "removed_from_list",
        )
        movie_fields = (
            "rated_at",
            "playback",
            "plantowatch",
            "completed",
            "dropped",
            "removed_from_list",
        )
        out: dict[str, Any] = {"settings": {"all": iso_utc(base, millis=False)}}
        latest = base
        for group, names in (
            ("tv_shows", show_fields),
            ("anime", show_fields),
            ("movies", movie_fields),
        ):
            stamps = {n: stamp(group, n) for n in names}
            group_latest = max(
                [self.state.activity.get((user, group, n), base) for n in names] + [base]
            )
            latest = max(latest, group_latest)
            out[group] = {"all": iso_utc(group_latest, millis=False)} | stamps
        out["all"] = iso_utc(latest, millis=False)
        return json_response(out)

    async def all_items(self, request: web.Request) -> web.Response:
        user = self.guard(request)
        if isinstance(user, web.Response):
            return user
        type_name = request.match_info.get("type")
        if type_name is not None and type_name not in ALL_ITEMS_TYPES:
            return simkl_error(404, "not_found", "Unknown type")
        date_from: float | None = None
        if request.query.get("date_from"):
            try:
                date_from = parse_iso(request.query["date_from"])
            except ValueError:
                return simkl_error(400, "bad_request", "date_from must be an ISO 8601 date")
        else:
            # Simkl warns that polling without date_from risks suspension: count it.
            self.state.full_syncs += 1
        wanted = [type_name] if type_name else list(ALL_ITEMS_TYPES)
        out: dict[str, Any] = {}
        for plural in wanted:
            items = self._library(user, ALL_ITEMS_TYPES[plural], date_from)
            if items:
                out[plural] = items
        # An empty library answers a bare JSON null.
        return json_response(out or None)

    def _library(self, user: str, kind: Kind, date_from: float | None) -> list[dict[str, Any]]:
        grouped: dict[str, list[WatchEvent]] = defaultdict(list)
        for event in self.state.history:
            if event.user == user and event.kind == kind:
                grouped[event.key].append(event)
        out = []
        for key, events in grouped.items():
            last = max(e.watched_at for e in events)
            rating = self.state.ratings.get((user, f"{kind}:{key}"))
            changed = max(last, rating.rated_at if rating else 0)
            if date_from is not None and changed < date_from:
                continue
            entry: dict[str, Any] = {
                "last_watched_at": iso_utc(last, millis=False),
                "user_rating": rating.rating if rating else None,
                "user_rated_at": iso_utc(rating.rated_at, millis=False) if rating else None,
                "status": "completed" if kind == "movie" else "watching",
            }
            if kind == "movie":
                entry["movie"] = events[-1].item
            else:
                seasons: dict[int, list[dict[str, Any]]] = defaultdict(list)
                for e in events:
                    if e.number is not None:
                        seasons[e.season or 1].append(
                            {"number": e.number, "watched_at": iso_utc(e.watched_at, millis=False)}
                        )
                entry["show"] = events[-1].item
                entry["watched_episodes_count"] = sum(len(v) for v in seasons.values())
                entry["seasons"] = [
                    {"number": n, "episodes": eps} for n, eps in sorted(seasons.items())
                ]
            out.append(entry)
        return out

    async def settings(self, request: web.Request) -> web.Response:
        user = self.guard(request)
        if isinstance(user, web.Response):
            return user
        return json_response(
            {"user": {"name": user}, "account": {"id": zlib.crc32(user.encode()) % 10**7}}
        )


def _search_result(item: CatalogItem, endpoint_type: str) -> dict[str, Any]:
    """A text search result as Simkl writes it: `ids.simkl_id`, not `ids.simkl`."""
    result: dict[str, Any] = {
        "title": item.title,
        "year": item.year,
        "endpoint_type": endpoint_type,
        "poster": f"{item.ids.get('simkl', 0) % 100}/{item.ids.get('simkl', 0)}",
        "ids": {"simkl_id": item.ids.get("simkl"), "slug": item.ids.get("slug")},
    }
    if item.titles:
        result["title_en"] = item.titles[0]
    return result


def _lookup_result(item: CatalogItem) -> dict[str, Any]:
    return {
        "type": item.type,
        "title": item.title,
        "year": item.year,
        "poster": f"{item.ids.get('simkl', 0) % 100}/{item.ids.get('simkl', 0)}",
        "ids": dict(item.ids),
    }


__all__ = ["GROUPS", "SimklApi", "check_client", "simkl_error"]
