"""What every history reader is made of, and how an answer of a history read is judged.
Pure: no network, clock or database.

A job reads a service's history page by page. A reader turns a *cursor* (a small JSON
object saved with every page, so a killed job goes on where it stopped) into the next
request, and the answer into a :class:`Page`: the items it holds and the cursor of the page
after it (None when the history is read to its end). Every item keeps its own time: a play
its watched or listened moment, a rating its rated moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol
from uuid import UUID

from scrobble_shared.trackers.http import HttpRequest, HttpResponse, Outcome, retry_after_s
from scrobble_shared.trackers.pace import PaceKey

Cursor = dict[str, Any]
ItemKind = Literal["play", "rating", "list_entry"]
ContentKind = Literal["movie", "episode", "track", "anime_episode"]

KEY_BUDGET: Final = 512
_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522})


@dataclass(frozen=True)
class ImportedItem:
    """One play, rating or list entry read from a service, with its own time."""

    kind: ItemKind
    content_type: ContentKind
    # The service's own identity of the item, e.g. ``movie:trakt:16662``.
    item_key: str
    occurred_at: datetime
    title: str | None = None
    # Named as the playback event names ids (tmdb, imdb, trakt, trakt_slug, simkl, mal...).
    external_ids: Mapping[str, Any] = field(default_factory=dict)
    rating: int | None = None
    progress: int | None = None
    year: int | None = None
    # Episodes: the show ({title, year, external_ids}), season and number.
    show: Mapping[str, Any] | None = None
    season: int | None = None
    number: int | None = None
    # Tracks.
    artists: tuple[str, ...] = ()
    album: str | None = None
    raw: Mapping[str, Any] | None = None


def track_play(
    artist: str,
    title: str,
    at: datetime,
    external_ids: Mapping[str, Any],
    album: str | None,
    raw: Mapping[str, Any],
) -> ImportedItem:
    """A listen read from a music service (Last.fm, ListenBrainz), keyed by its names."""
    return ImportedItem(
        kind="play",
        content_type="track",
        item_key=clip_key(f"track:{artist.casefold()}\x1f{title.casefold()}"),
        occurred_at=at,
        title=title,
        external_ids=external_ids,
        artists=(artist,),
        album=album,
        raw=raw,
    )


@dataclass(frozen=True)
class Page:
    items: list[ImportedItem]
    # Where the next page starts; None when this was the last one.
    next_cursor: Cursor | None
    # Entries the answer held that are not imported (now playing, unsupported kinds).
    skipped: int = 0


@dataclass(frozen=True)
class JobContext:
    """What a reader needs to know about the job it reads for."""

    connection_id: UUID
    token: str = field(repr=False)  # never in a log line
    # The account name at the service (Last.fm user, ListenBrainz user name).
    user_name: str | None
    # Only what is newer than this (the last finished import); None: everything.
    since: datetime | None
    # Nothing newer than this: fixed when the job first ran, so pages stay put.
    until: datetime
    # The connection's own API address (a tracker each user runs themselves), if any.
    api_url: str | None = None


class UnexpectedAnswer(ValueError):
    """A 2xx whose body is not the page a reader reads: transient, the page is asked again."""


class ImportRefused(Exception):
    """The job cannot run at all (no user name to read the history of...); permanent."""


class HistoryReader(Protocol):
    """The pure part of one service's import."""

    service: str

    def start(self, ctx: JobContext) -> Cursor:
        """The cursor of the first request."""
        ...

    def request(self, cursor: Cursor, ctx: JobContext) -> HttpRequest: ...

    def read(self, cursor: Cursor, response: HttpResponse, ctx: JobContext) -> Page:
        """What a 2xx answer says; raises :class:`UnexpectedAnswer` when it is not a page."""
        ...

    def judge(self, response: HttpResponse) -> Outcome | None:
        """None when the answer is a page to read, else what to do about it."""
        ...

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        """The rate limits a history read counts against (the service's read limits)."""
        ...

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        """Seconds to hold the next call (rate-limit headers), if the answer says so."""
        ...


def judge_status(label: str, response: HttpResponse) -> Outcome | None:
    """The common reading of a status: 2xx a page; 429, 5xx and timeouts again later (after
    Retry-After when given); 401/403 the user must connect again; any other refusal final."""
    status = response.status
    if 200 <= status < 300:
        return None
    if status in _RETRY_STATUSES or status >= 500:
        return Outcome.retry(f"{label} answered HTTP {status}", status, retry_after_s(response))
    if status in (401, 403):
        return Outcome.reconnect(f"{label} refused the token (HTTP {status})", status)
    return Outcome.permanent(f"{label} refused the history read (HTTP {status})", status)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 text (``Z`` or an offset) or Unix seconds as an aware UTC datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    """``2026-11-20T21:04:05.000Z``, as Trakt and Simkl write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def unix_s(moment: datetime) -> int:
    return int(moment.timestamp())


def clip_key(key: str) -> str:
    return key[:KEY_BUDGET]


def positive(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
