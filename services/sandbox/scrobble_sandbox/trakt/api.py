"""Trakt API routes: header rules, scrobble, sync history and ratings, user settings, and
the catalogue reads: text search and id lookup."""

import math
from typing import Any

from aiohttp import web

from scrobble_sandbox.core.clock import now, parse_iso
from scrobble_sandbox.core.http import int_arg, json_response
from scrobble_sandbox.core.items import CatalogItem, is_int, is_number
from scrobble_sandbox.core.scrobbling import ScrobbleApi, objects, watched_at
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import TRAKT_CLIENT_ID
from scrobble_sandbox.trakt.state import Rating, TraktState

SHARING = {"twitter": False, "mastodon": False, "tumblr": False}
HISTORY_TYPES = {"movies": "movie", "shows": "episode", "seasons": "episode", "episodes": "episode"}
SEARCH_TYPES = ("movie", "show", "episode", "person", "list")
ID_TYPES = ("trakt", "imdb", "tmdb", "tvdb")


def error(status: int, code: str, description: str) -> web.Response:
    return json_response({"error": code, "error_description": description}, status=status)


def unauthorized() -> web.Response:
    response = error(401, "invalid_token", "The access token is missing, invalid or expired")
    response.headers["WWW-Authenticate"] = (
        'Bearer realm="Trakt API", error="invalid_token", '
        'error_description="The access token is invalid"'
    )
    return response


def check_headers(request: web.Request) -> web.Response | None:
    """The headers every Trakt API call must carry; None when they are all right."""
    if request.headers.get("trakt-api-key") != TRAKT_CLIENT_ID:
        return error(403, "forbidden", "Invalid API key or unapproved app")
    if request.headers.get("trakt-api-version") != "2":
        return error(400, "bad_request", "trakt-api-version header must be 2")
    if not request.headers.get("User-Agent", "").strip():
        return error(403, "forbidden", "A User-Agent header is required")
    if request.method in ("POST", "PUT") and request.content_type != "application/json":
        return error(400, "bad_request", "Content-Type must be application/json")
    return None


class TraktApi(ScrobbleApi[TraktState]):
    """Handlers of the API host; `fake` holds the state."""

    unparsable_body_text = "Request body could not be parsed"
    non_object_body_text = "Request body must be an object"

    def add_routes(self, router: web.UrlDispatcher, prefix: str) -> None:
        self.add_write_routes(router, prefix)
        router.add_get(f"{prefix}/sync/history", self.get_history)
        router.add_get(f"{prefix}/sync/history/{{type}}", self.get_history)
        router.add_get(f"{prefix}/sync/ratings", self.get_ratings)
        router.add_get(f"{prefix}/sync/ratings/{{type}}", self.get_ratings)
        router.add_get(f"{prefix}/users/settings", self.user_settings)
        router.add_get(f"{prefix}/search/{{type}}", self.text_search)
        router.add_get(f"{prefix}/search/{{id_type}}/{{id}}", self.id_lookup)

    def app_refusal(self, request: web.Request) -> web.Response | None:
        return check_headers(request)

    def token_refusal(self) -> web.Response:
        return unauthorized()

    def tokens(self) -> TokenStore:
        return self.state.access

    def bad_request(self, message: str) -> web.Response:
        return error(400, "bad_request", message)

    # --- search ----------------------------------------------------------------------------
    async def text_search(self, request: web.Request) -> web.Response:
        """GET /search/{type}?query=&years=: items whose title holds every word, best first
        (`score`), `years` a year or a range `1990-1999`; paginated."""
        refused = self.reader(request)
        if refused is not None:
            return refused
        types = request.match_info["type"].split(",")
        if not all(t in SEARCH_TYPES for t in types):
            return error(404, "not_found", "Unknown search type")
        query = request.query.get("query", "")
        try:
            years = _years(request.query.get("years"))
            page = max(1, int_arg(request, "page", 1))
            limit = min(max(1, int_arg(request, "limit", 10)), self.state.max_page_limit)
        except ValueError as exc:
            return error(400, "bad_request", f"Invalid query parameter: {exc}")
        found = self.state.catalog.search(types, query, years)
        chunk = found[(page - 1) * limit : page * limit]
        results = [self.search_result(item, score) for score, item in chunk]
        return json_response(results, headers=pagination_headers(page, limit, len(found)))

    async def id_lookup(self, request: web.Request) -> web.Response:
        """GET /search/{id_type}/{id}?type=: the items with that id (an empty list if none)."""
        refused = self.reader(request)
        if refused is not None:
            return refused
        id_type = request.match_info["id_type"]
        if id_type not in ID_TYPES:
            return error(404, "not_found", "Unknown id type")
        wanted = request.query.get("type")
        types = wanted.split(",") if wanted else ["movie", "show", "episode"]
        items = self.state.catalog.by_id(id_type, request.match_info["id"], types)
        results = [self.search_result(item, 1000.0) for item in items]
        return json_response(results, headers=pagination_headers(1, 10, len(results)))

    def search_result(self, item: CatalogItem, score: float) -> dict[str, Any]:
        result: dict[str, Any] = {"type": item.type, "score": score}
        if item.type == "episode":
            result["episode"] = {
                "season": item.season,
                "number": item.number,
                "title": item.title,
                "ids": dict(item.ids),
            }
            show = self.state.catalog.show_of(item)
            result["show"] = show.summary() if show is not None else None
        else:
            result[item.type] = item.summary()
        return result

    # --- scrobble --------------------------------------------------------------------------
    def resolve_item(
        self, body: dict[str, Any]
    ) -> tuple[str, str | None, dict[str, Any]] | web.Response:
        """(type, key, echo) of the item a scrobble names; key None means not found."""
        movie, show, episode = body.get("movie"), body.get("show"), body.get("episode")
        if isinstance(movie, dict):
            return "movie", self.movie_key(movie), {"movie": movie}
        if isinstance(episode, dict):
            if isinstance(show, dict):
                key = self.episode_key(show, episode)
                return "episode", key, {"episode": episode, "show": show}
            return "episode", self.episode_key(None, episode), {"episode": episode}
        return error(400, "bad_request", "A movie or an episode is required")

    def movie_key(self, movie: Any) -> str | None:
        return self.media_key("movie", movie)

    def episode_key(self, show: Any, episode: Any) -> str | None:
        """An episode by show + season + number (and its own ids), or by its ids alone."""
        if self.unknown(show, episode):
            return None
        if show is None:
            return self.state.items.episode("episode", None, episode)
        show_key = self.state.items.media("show", show)
        if show_key is None or not isinstance(episode, dict) or not is_int(episode.get("number")):
            return None
        return self.state.items.episode("episode", show_key, episode)

    async def scrobble(self, request: web.Request, action: str) -> web.Response:
        got = await self.user_and_body(request)
        if isinstance(got, web.Response):
            return got
        user, body = got
        progress = body.get("progress")
        if not is_number(progress) or not 0 <= progress <= 100:
            return error(422, "unprocessable_entity", "progress must be a number from 0 to 100")
        resolved = self.resolve_item(body)
        if isinstance(resolved, web.Response):
            return resolved
        kind, key, echo = resolved
        if key is None:
            return error(404, "not_found", "Item not found")
        progress = float(progress)
        at = now()
        result_id, result_action = 0, action
        if action == "stop":
            if progress < 1:
                return error(422, "unprocessable_entity", "progress below 1% cannot be stopped")
            if progress >= 80:
                conflict = self.duplicate(user, key, at)
                if conflict is not None:
                    return conflict
                item = self.state.add_history(
                    user,
                    "movie" if kind == "movie" else "episode",
                    at,
                    "scrobble",
                    movie=echo.get("movie"),
                    show=echo.get("show"),
                    episode=echo.get("episode"),
                )
                self.finish(user, key, at)
                result_id, result_action = item.id, "scrobble"
            else:
                # Trakt keeps an early stop as a paused playback, not as watched.
                self.state.playback[(user, key)] = progress
                result_action = "pause"
        else:
            self.state.playback[(user, key)] = progress
        self.log_scrobble(user, action, result_action, progress, key, at)
        return json_response(
            {"id": result_id, "action": result_action, "progress": progress, "sharing": SHARING}
            | echo,
            status=201,
        )

    # --- history ---------------------------------------------------------------------------
    @staticmethod
    def _watched_at(obj: dict[str, Any], default: float) -> float:
        return watched_at(obj, default, released=True)

    def store_history(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        at = now()
        added = {"movies": 0, "episodes": 0}
        not_found: dict[str, list[Any]] = {
            "movies": [],
            "shows": [],
            "seasons": [],
            "episodes": [],
            "people": [],
        }
        for movie in objects(body, "movies"):
            if self.movie_key(movie) is None:
                not_found["movies"].append(movie)
                continue
            when = self._watched_at(movie, at)
            echo = {k: v for k, v in movie.items() if k != "watched_at"}
            self.state.add_history(user, "movie", when, "watch", movie=echo)
            added["movies"] += 1
        for show in objects(body, "shows"):
            show_key = self.media_key("show", show)
            if show_key is None:
                not_found["shows"].append(show)
                continue
            show_when = self._watched_at(show, at)
            echo_show = {k: v for k, v in show.items() if k not in ("watched_at", "seasons")}
            for season in objects(show, "seasons"):
                season_when = self._watched_at(season, show_when)
                for ep in objects(season, "episodes"):
                    episode = {"season": season.get("number"), "number": ep.get("number")}
                    if not is_int(episode["season"]) or not is_int(episode["number"]):
                        not_found["episodes"].append(ep)
                        continue
                    # Seen: a later scrobble of this episode by other ids is the same one.
                    self.state.items.episode("episode", show_key, ep | episode)
                    when = self._watched_at(ep, season_when)
                    self.state.add_history(
                        user, "episode", when, "watch", show=echo_show, episode=episode
                    )
                    added["episodes"] += 1
        for ep in objects(body, "episodes"):
            if self.episode_key(None, ep) is None:
                not_found["episodes"].append(ep)
                continue
            when = self._watched_at(ep, at)
            echo = {k: v for k, v in ep.items() if k != "watched_at"}
            self.state.add_history(user, "episode", when, "watch", episode=echo)
            added["episodes"] += 1
        return {"added": added, "not_found": not_found}

    async def get_history(self, request: web.Request) -> web.Response:
        user = self.guard(request)
        if isinstance(user, web.Response):
            return user
        type_name = request.match_info.get("type")
        if type_name is not None and type_name not in HISTORY_TYPES:
            return error(404, "not_found", "Unknown history type")
        try:
            page = max(1, int_arg(request, "page", 1))
            limit = min(max(1, int_arg(request, "limit", 10)), self.state.max_page_limit)
            start_at = _time_arg(request, "start_at")
            end_at = _time_arg(request, "end_at")
        except ValueError as exc:
            return error(400, "bad_request", f"Invalid query parameter: {exc}")
        items = self.state.user_history(user, HISTORY_TYPES.get(type_name or ""))
        if start_at is not None:
            items = [h for h in items if h.watched_at >= start_at]
        if end_at is not None:
            items = [h for h in items if h.watched_at <= end_at]
        total = len(items)
        chunk = items[(page - 1) * limit : page * limit]
        headers = pagination_headers(page, limit, total)
        return json_response([h.to_json() for h in chunk], headers=headers)

    # --- ratings ---------------------------------------------------------------------------
    async def add_ratings(self, request: web.Request) -> web.Response:
        """Ratings of movies, shows, seasons and episodes. As at Trakt, a show may carry its
        own rating and nest `seasons[]` (each with an optional rating) and their
        `episodes[]`; each level that is rated counts in `added`."""
        got = await self.user_and_body(request)
        if isinstance(got, web.Response):
            return got
        user, body = got
        at = now()
        added = {"movies": 0, "shows": 0, "seasons": 0, "episodes": 0}
        not_found: dict[str, list[Any]] = {k: [] for k in added}
        try:
            items = [(plural, item) for plural in added for item in objects(body, plural)]
            if not all(
                ratings_valid(item, NESTED_RATINGS.get(plural, ())) for plural, item in items
            ):
                return error(422, "unprocessable_entity", "rating must be an integer 1-10")
        except ValueError as exc:
            return error(400, "bad_request", str(exc))
        pending: list[Rating] = []
        try:
            for plural, item in items:
                if plural == "shows":
                    pending += self.show_ratings(user, item, at, not_found)
                    continue
                key = (
                    self.episode_key(None, item)
                    if plural == "episodes"
                    else self.media_key(plural[:-1], item)
                )
                if key is None:
                    not_found[plural].append(item)
                    continue
                pending.append(rating_of(user, plural[:-1], key, item, rated_at(item, at)))
        except ValueError as exc:
            return error(400, "bad_request", str(exc))
        for r in pending:
            self.state.ratings[(user, f"{r.type}:{r.key}")] = r
            added[f"{r.type}s"] += 1
        return json_response({"added": added, "not_found": not_found}, status=201)

    def show_ratings(
        self, user: str, show: dict[str, Any], at: float, not_found: dict[str, list[Any]]
    ) -> list[Rating]:
        """The ratings a `shows[]` entry gives: the show's own, its seasons' and their
        episodes'. A nested `rated_at` defaults to the one above it. ValueError when a
        rated_at is malformed."""
        show_key = self.media_key("show", show)
        if show_key is None:
            not_found["shows"].append(show)
            return []
        out: list[Rating] = []
        show_at = rated_at(show, at)
        echo_show = strip(show, "seasons")
        if rated_here(show, "seasons"):
            out.append(rating_of(user, "show", show_key, show, show_at))
        for season in objects(show, "seasons"):
            number = season.get("number")
            if not is_int(number) or self.unknown(season):
                not_found["seasons"].append(season)
                continue
            season_at = rated_at(season, show_at)
            if rated_here(season, "episodes"):
                key = f"show:{show_key}:s{number}"
                out.append(rating_of(user, "season", key, season, season_at, echo_show))
            for ep in objects(season, "episodes"):
                if not is_int(ep.get("number")) or self.unknown(ep):
                    not_found["episodes"].append(ep)
                    continue
                episode = ep | {"season": number}
                # The same episode a scrobble or history entry names by show + number.
                key = self.state.items.episode("episode", show_key, episode) or ""
                out.append(
                    rating_of(user, "episode", key, episode, rated_at(ep, season_at), echo_show)
                )
        return out

    async def get_ratings(self, request: web.Request) -> web.Response:
        user = self.guard(request)
        if isinstance(user, web.Response):
            return user
        kind = (request.match_info.get("type") or "").rstrip("s") or None
        items = [
            r.to_json()
            for (owner, _), r in self.state.ratings.items()
            if owner == user and (kind is None or r.type == kind)
        ]
        return json_response(items)

    async def user_settings(self, request: web.Request) -> web.Response:
        user = self.guard(request)
        if isinstance(user, web.Response):
            return user
        return json_response(
            {"user": {"username": user, "private": False, "vip": False, "ids": {"slug": user}}}
        )


# What a rated item may nest, level by level: a show its seasons, a season its episodes.
NESTED_RATINGS = {"shows": ("seasons", "episodes")}
NESTED_KEYS = ("seasons", "episodes", "rating", "rated_at")


def ratings_valid(node: dict[str, Any], nested: tuple[str, ...]) -> bool:
    """True when every rating in `node` and below is an integer 1-10. A level must carry a
    rating unless it nests rated levels (a show of rated episodes need not be rated itself).
    ValueError when a nested list is not a list of objects."""
    children = objects(node, nested[0]) if nested else []
    if rated_here(node, nested[0] if nested else None):
        value = node.get("rating")
        if not is_int(value) or not 1 <= value <= 10:
            return False
    return all(ratings_valid(child, nested[1:]) for child in children)


def rated_here(node: dict[str, Any], nested: str | None) -> bool:
    """True when a level is rated itself: it carries a rating, or nests no level to rate."""
    return "rating" in node or not (nested and node.get(nested))


def rated_at(node: dict[str, Any], default: float) -> float:
    """A node's `rated_at` (ISO 8601), else `default`; ValueError when malformed."""
    if "rated_at" not in node:
        return default
    try:
        return parse_iso(node["rated_at"])
    except (ValueError, TypeError):
        raise ValueError("rated_at must be an ISO 8601 string") from None


def strip(node: dict[str, Any], *extra: str) -> dict[str, Any]:
    """A rated item as it is echoed back: without its rating, rated_at or nested levels."""
    return {k: v for k, v in node.items() if k not in ("rating", "rated_at", *extra)}


def rating_of(
    user: str,
    kind: str,
    key: str,
    node: dict[str, Any],
    at: float,
    show: dict[str, Any] | None = None,
) -> Rating:
    return Rating(user, kind, key, node["rating"], at, strip(node, *NESTED_KEYS), show)


def _years(raw: str | None) -> tuple[int, int] | None:
    """`2010` or `2010-2012`; ValueError otherwise."""
    if raw is None or not raw.strip():
        return None
    first, _, last = raw.strip().partition("-")
    return int(first), int(last or first)


def _time_arg(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    return None if raw is None else parse_iso(raw)


def pagination_headers(page: int, limit: int, total: int) -> dict[str, str]:
    return {
        "X-Pagination-Page": str(page),
        "X-Pagination-Limit": str(limit),
        "X-Pagination-Page-Count": str(max(1, math.ceil(total / limit))),
        "X-Pagination-Item-Count": str(total),
    }
