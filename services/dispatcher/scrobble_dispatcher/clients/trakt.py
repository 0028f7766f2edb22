"""The Trakt client (API v2, EXTERNAL_APIS.md "Trakt"): scrobble work in, a request out; a
response in, an outcome out. Pure: no network, no clock.

What each kind of work becomes:

- ``START`` / ``PAUSE`` / ``SCROBBLE``: ``POST /scrobble/start|pause|stop`` with ``progress``
  (0-100, two decimals) and the item; a stop from 80 % is watched at Trakt.
- ``WATCHED``: ``POST /sync/history`` with ``watched_at`` = when it happened.
- ``RATING``: ``POST /sync/ratings`` with an integer ``rating`` 1-10 and ``rated_at``.

An item is named the way Trakt resolves it: a movie by its ids (``trakt``, ``slug``,
``imdb``, ``tmdb``) or else title + year; an episode by its own ids (``trakt``, ``tvdb``) or
else by its show (ids, or title + year) with season and number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from scrobble_dispatcher.clients.base import (
    USER_AGENT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    Outcome,
    Unsendable,
    UserCredentials,
    retry_after_s,
    seconds_until,
)
from scrobble_shared.events import Content, ContentType, ExternalIds, Show
from scrobble_shared.service_names import ServiceName
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

API_VERSION: Final = "2"

_PATHS: Final[dict[WorkKind, str]] = {
    WorkKind.START: "/scrobble/start",
    WorkKind.PAUSE: "/scrobble/pause",
    WorkKind.SCROBBLE: "/scrobble/stop",
    WorkKind.WATCHED: "/sync/history",
    WorkKind.RATING: "/sync/ratings",
}
_SCROBBLE_KINDS: Final = frozenset({WorkKind.START, WorkKind.PAUSE, WorkKind.SCROBBLE})
_SYNC_KINDS: Final = frozenset({WorkKind.WATCHED, WorkKind.RATING})

# Permanent refusals (EXTERNAL_APIS.md), worded for a history list; the status is appended.
_REFUSALS: Final[dict[int, str]] = {
    400: "Trakt refused the request as malformed",
    403: "Trakt refused the app's API key",
    404: "not found at Trakt",
    405: "Trakt does not allow this call",
    412: "Trakt refused the request (precondition failed)",
    422: "Trakt could not process the request",
    423: "the Trakt account is locked",
    426: "Trakt needs VIP for this",
}
ACCOUNT_LIMIT_REASON: Final = "Trakt account limit reached (VIP needed)"
_DETAIL_BUDGET: Final = 200

Ids = dict[str, int | str]


@dataclass(frozen=True)
class TraktItem:
    """How one item is named to Trakt: a movie, an episode by its own ids, or a show with
    the season and number of the episode."""

    kind: Literal["movie", "episode", "show"]
    obj: dict[str, Any]
    season: int = 0
    number: int = 0


class TraktClient:
    """The pure Trakt client; ``app.client_id`` is the ``trakt-api-key``."""

    service: ServiceName = "trakt"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self.api_url = api_url.rstrip("/")
        self.app = app

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest:
        """The request for this work; raises :class:`Unsendable` when Trakt cannot take it."""
        path = _PATHS.get(work.kind)
        if path is None:
            raise Unsendable(f"Trakt has no call for {work.kind.value} work")
        item = trakt_item(work.content)
        if work.kind in _SCROBBLE_KINDS:
            body = scrobble_body(item, scrobble_progress(work))
        elif work.kind is WorkKind.WATCHED:
            body = sync_body(item, {"watched_at": iso_utc(work.occurred_at)})
        else:
            extra = {"rating": trakt_rating(work.rating), "rated_at": iso_utc(work.occurred_at)}
            body = sync_body(item, extra)
        return HttpRequest(
            method="POST",
            url=self.api_url + path,
            headers=self.headers(user),
            json=body,
        )

    def headers(self, user: UserCredentials) -> dict[str, str]:
        """The headers every Trakt write carries."""
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "trakt-api-key": self.app.client_id,
            "trakt-api-version": API_VERSION,
            "Authorization": f"Bearer {user.token}",
        }

    def classify(self, work: ScrobbleWork, response: HttpResponse) -> Outcome:
        """What Trakt's answer means for this work."""
        status = response.status
        if 200 <= status < 300:
            return classify_accepted(work, response)
        if status == 409:
            return already_scrobbled(response)
        if status == 401:
            return Outcome.refresh("Trakt refused the access token (HTTP 401)", status)
        if status == 429:
            return Outcome.slow_down(
                "Trakt rate limit reached (HTTP 429)", status, rate_limit_wait_s(response)
            )
        if status >= 500:
            return Outcome.retry(
                f"Trakt is unavailable (HTTP {status})", status, retry_after_s(response)
            )
        if status == 420:
            return Outcome.permanent(ACCOUNT_LIMIT_REASON, status)
        return Outcome.permanent(refusal_reason(work, response), status)

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        """Seconds to hold the next call: Retry-After, else the ``until`` of an exhausted
        ``X-Ratelimit`` window."""
        after = retry_after_s(response)
        if after is not None:
            return after
        info = ratelimit_info(response)
        if info is None or info.get("remaining") != 0:
            return None
        return ratelimit_until_s(response, info)


# --- items -------------------------------------------------------------------------------


def trakt_item(content: Content) -> TraktItem:
    """The item as Trakt names it; raises :class:`Unsendable` when nothing names it."""
    if content.type is ContentType.MOVIE:
        return movie_item(content)
    if content.type is ContentType.EPISODE:
        return episode_item(content)
    raise Unsendable(f"Trakt takes movies and episodes, not {content.type.value.replace('_', ' ')}")


def movie_item(content: Content) -> TraktItem:
    ids = media_ids(content.external_ids, with_tvdb=False)
    if not ids and content.year is None:
        raise Unsendable(
            f"no id Trakt accepts: movie {describe(content)} has no trakt, slug, imdb or tmdb "
            "id and no year"
        )
    return TraktItem("movie", titled(content.title, content.year, ids))


def episode_item(content: Content) -> TraktItem:
    own = episode_ids(content.external_ids)
    if own:
        return TraktItem("episode", {"ids": own})
    name = f"no id Trakt accepts: episode {describe(content)} has no trakt or tvdb id"
    show = content.show
    if show is None:
        raise Unsendable(f"{name} and no show")
    if content.season is None or content.number is None:
        raise Unsendable(f"{name} and no season and episode number")
    return TraktItem("show", show_object(show, name), content.season, content.number)


def show_object(show: Show, name: str) -> dict[str, Any]:
    ids = media_ids(show.external_ids, with_tvdb=True)
    if not ids and show.year is None:
        raise Unsendable(f"{name}, and its show has no id and no year")
    return titled(show.title, show.year, ids)


def media_ids(ids: ExternalIds | None, *, with_tvdb: bool) -> Ids:
    """Movie ids (``trakt``, ``slug``, ``imdb``, ``tmdb``); shows add ``tvdb``."""
    if ids is None:
        return {}
    found: dict[str, int | str | None] = {
        "trakt": ids.trakt,
        "slug": clean_text(ids.trakt_slug),
        "imdb": clean_text(ids.imdb),
        "tmdb": ids.tmdb,
    }
    if with_tvdb:
        found["tvdb"] = ids.tvdb
    return {name: value for name, value in found.items() if value is not None}


def episode_ids(ids: ExternalIds | None) -> Ids:
    """An episode's own ids Trakt is known to resolve (``imdb``/``tmdb`` are unverified)."""
    if ids is None:
        return {}
    found = {"trakt": ids.trakt, "tvdb": ids.tvdb}
    return {name: value for name, value in found.items() if value is not None}


def clean_text(value: str | None) -> str | None:
    # The event model lets a trailing newline through on ids (it mirrors the JSON Schema).
    text = None if value is None else value.strip()
    return text or None


def titled(title: str, year: int | None, ids: Ids) -> dict[str, Any]:
    obj: dict[str, Any] = {"title": title}
    if year is not None:
        obj["year"] = year
    if ids:
        obj["ids"] = ids
    return obj


def describe(content: Content) -> str:
    """The item as a person reads it in a history list."""
    if content.type is ContentType.MOVIE:
        year = f" ({content.year})" if content.year is not None else ""
        return f'"{content.title}"{year}'
    show = f"{content.show.title} " if content.show is not None else ""
    if content.season is not None and content.number is not None:
        return f'{show}S{content.season:02d}E{content.number:02d} "{content.title}"'
    return f'{show}"{content.title}"'


# --- bodies ------------------------------------------------------------------------------


def scrobble_progress(work: ScrobbleWork) -> float:
    """Progress for a scrobble call: 0-100 with two decimals (a start may not know it)."""
    progress = work.progress_percent
    if progress is None:
        if work.kind is WorkKind.SCROBBLE:
            raise Unsendable("a Trakt stop needs the progress, and this one has none")
        progress = 0.0
    if not math.isfinite(progress):
        raise Unsendable(f"progress {progress} is not a number Trakt takes")
    return round(min(max(progress, 0.0), 100.0), 2)


def trakt_rating(rating: float | None) -> int:
    """Trakt's whole-number 1-10 scale; halves round up."""
    if rating is None or not math.isfinite(rating):
        raise Unsendable("a Trakt rating needs a value from 1 to 10, and this one has none")
    return min(max(math.floor(rating + 0.5), 1), 10)


def scrobble_body(item: TraktItem, progress: float) -> dict[str, Any]:
    if item.kind == "show":
        return {
            "progress": progress,
            "show": item.obj,
            "episode": {"season": item.season, "number": item.number},
        }
    return {"progress": progress, item.kind: item.obj}


def sync_body(item: TraktItem, extra: dict[str, Any]) -> dict[str, Any]:
    """A one-item body for ``/sync/history`` or ``/sync/ratings``; ``extra`` goes on the
    item itself (on the episode, for a show)."""
    if item.kind == "show":
        episode = {"number": item.number} | extra
        season = {"number": item.season, "episodes": [episode]}
        return {"shows": [item.obj | {"seasons": [season]}]}
    return {f"{item.kind}s": [item.obj | extra]}


def iso_utc(moment: datetime) -> str:
    """``2026-11-20T21:04:05.000Z``, as Trakt writes times; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- answers -----------------------------------------------------------------------------


def classify_accepted(work: ScrobbleWork, response: HttpResponse) -> Outcome:
    """A 2xx: done, unless a sync answer lists the item as ``not_found``."""
    body = response.json()
    if work.kind in _SYNC_KINDS and lists_not_found(body):
        return Outcome.permanent(f"not found at Trakt: {describe(work.content)}", response.status)
    return Outcome.done(accepted_reason(work, body), response.status)


def lists_not_found(body: Any) -> bool:
    # One item goes per call, so anything listed is that item.
    not_found = body.get("not_found") if isinstance(body, dict) else None
    if not isinstance(not_found, dict):
        return False
    return any(isinstance(items, list) and items for items in not_found.values())


def accepted_reason(work: ScrobbleWork, body: Any) -> str:
    if work.kind is WorkKind.START:
        return "playback started at Trakt"
    if work.kind is WorkKind.PAUSE:
        return "playback paused at Trakt"
    if work.kind is WorkKind.SCROBBLE:
        action = body.get("action") if isinstance(body, dict) else None
        if action == "pause":
            return "kept as paused at Trakt (below its 80 % watched mark)"
        return "scrobbled to Trakt"
    if work.kind is WorkKind.WATCHED:
        return "added to Trakt history"
    return f"rated {trakt_rating(work.rating)}/10 at Trakt"


def already_scrobbled(response: HttpResponse) -> Outcome:
    """409: Trakt has just scrobbled this item; its body says when."""
    body = response.json()
    watched_at = body.get("watched_at") if isinstance(body, dict) else None
    reason = "already scrobbled at Trakt"
    if isinstance(watched_at, str) and watched_at:
        reason += f" (watched at {watched_at})"
    return Outcome.already_done(reason, response.status)


def refusal_reason(work: ScrobbleWork, response: HttpResponse) -> str:
    """A permanent 4xx in words: what Trakt refused, the status, and its own description."""
    text = _REFUSALS.get(response.status, "Trakt refused the request")
    if response.status == 404:
        text += f": {describe(work.content)}"
    reason = f"{text} (HTTP {response.status})"
    detail = error_detail(response)
    return f"{reason}: {detail}" if detail else reason


def error_detail(response: HttpResponse) -> str | None:
    body = response.json()
    if not isinstance(body, dict):
        return None
    for key in ("error_description", "message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:_DETAIL_BUDGET]
    return None


def rate_limit_wait_s(response: HttpResponse) -> float | None:
    """A 429's wait: Retry-After, else ``X-Ratelimit`` ``until`` against the Date header."""
    after = retry_after_s(response)
    if after is not None:
        return after
    info = ratelimit_info(response)
    return None if info is None else ratelimit_until_s(response, info)


def ratelimit_info(response: HttpResponse) -> dict[str, Any] | None:
    """The ``X-Ratelimit`` JSON (``{name, period, limit, remaining, until}``), if readable."""
    raw = response.header("x-ratelimit")
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def ratelimit_until_s(response: HttpResponse, info: dict[str, Any]) -> float | None:
    # Pure: "until" is measured from the answer's own Date, never from a clock here.
    return seconds_until(response, iso_date(info.get("until")))


def iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
