"""What every media server's webhook becomes: from a :class:`Notification` (what one
webhook said, read by ``jellyfin.py``, ``plex.py`` or ``emby.py``) and its source to a
PlaybackEvent v1, or to the reason it is not published. Pure: no I/O, no clock (the time
of arrival is handed in).

**Ids.** A webhook carries no event id, and servers or proxies may send one twice, so the
event id is a UUIDv5 (namespace :data:`INTAKE_NAMESPACE`) over, joined by ``|``:

1. the source id;
2. the server user (the first of its id or name, as matched, see ``server_user_key``);
3. the server's id of the item (its description when the payload has no id);
4. the server's own name of the event (``PlaybackProgress``, ``media.scrobble``...);
5. the position in milliseconds, or for a rating the rating, or nothing;
6. the server's timestamp as sent (Plex sends none: its readers put the item's view count
   and last-viewed time there, see ``plex.py``), or, when a template left it out, the
   :data:`TIME_BUCKET_S`-second bucket of the arrival time.

So a resent webhook has the same id and ingest takes it once. Two real events differ in
at least one part: a later progress tick has another position or timestamp; the next
complete watch of an item on Plex another view count. Where only the bucket is left, a
duplicate arriving across a bucket edge gets a new id, and ingest's play rules take it as
what it is, a duplicate stop or a repeated start inside the same play, never a second
scrobble.

The item id is ``uuid5(namespace, "<source id>|item|<server item id>")`` and the session id
``uuid5(namespace, "<source id>|session|<player session>")``: stable per server, and never
the same as another source's.

**Content type.** Episodes are ``anime_episode`` when the source lists their library as
anime, or when they carry an AniDB, AniList or MyAnimeList id and no TVDB, TMDB or IMDb id
(what Jellyfin's and Plex's anime agents send); otherwise ``episode``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import ValidationError

from scrobble_shared.events import Action, PlaybackEvent, schema_problems, usability_problems
from scrobble_shared.sources import ServerUser, Source

INTAKE_NAMESPACE: Final = uuid.UUID("6f0d4c2e-8a5b-5c1e-9d3f-2b7e4a6c8d10")
TIME_BUCKET_S: Final = 30
TICKS_PER_MS: Final = 10_000

MAX_TITLE: Final = 1024
MAX_CLIENT_TEXT: Final = 256
MAX_CLIENT_VERSION: Final = 64

ItemKind = Literal["movie", "episode", "track"]

_IMDB: Final = re.compile(r"tt[0-9]+")
_MBID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ANIME_IDS: Final = ("anidb", "anilist", "mal")
_GENERAL_IDS: Final = ("tvdb", "tmdb", "imdb")


class Unusable(Exception):
    """The payload cannot be used: a 400 naming every problem, nothing published."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Ignored:
    """An event type or a change the intake has no use for (answered 204)."""

    reason: str


@dataclass(frozen=True)
class Item:
    """The played item, in the playback event's terms, as far as the payload tells."""

    key: str
    kind: ItemKind
    title: str
    duration_ms: int | None = None
    year: int | None = None
    show_title: str | None = None
    show_year: int | None = None
    season: int | None = None
    number: int | None = None
    artists: tuple[str, ...] = ()
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    external_ids: Mapping[str, Any] = field(default_factory=dict)
    show_external_ids: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """What one webhook says happened, before mapping and filters."""

    event_type: str
    action: Action
    who: ServerUser
    item: Item
    library: str | None = None
    # The server's time of the event, and its text as sent (part of the event id).
    occurred_at: datetime | None = None
    timestamp_text: str | None = None
    position_ms: int | None = None
    progress_percent: float | None = None
    rating: float | None = None
    watched_at: datetime | None = None
    # The player session of the play (device and item, a play session id...).
    session_key: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    client_device: str | None = None


@dataclass(frozen=True)
class Publish:
    """The event, and the JSON object it was validated from (what goes on the topic)."""

    event: PlaybackEvent
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Skip:
    """Answered 2xx and counted, not published: ``unmapped`` or a filter's reason."""

    reason: str


Decision = Publish | Skip


# --- reading values out of loosely typed payloads ----------------------------------------


def text(value: object, limit: int = MAX_TITLE) -> str | None:
    """A non-empty string, trimmed, without NUL, cut at ``limit`` characters; else None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    cleaned = str(value).replace("\x00", "").strip()
    return cleaned[:limit] or None


def integer(value: object) -> int | None:
    """An integer from an int, an integral float or a decimal string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
        return int(value)
    return None


def number(value: object) -> float | None:
    """A finite number from a number or a decimal string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def flag(value: object) -> bool | None:
    """A boolean from JSON true/false or the words "true"/"false" (templates); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


def count(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def ticks_to_ms(value: object) -> int | None:
    """.NET ticks (100 ns) to milliseconds; None when absent or negative."""
    ticks = integer(value)
    return None if ticks is None or ticks < 0 else ticks // TICKS_PER_MS


def year_of(value: object) -> int | None:
    year = integer(value)
    return year if year is not None and 1800 <= year <= 2200 else None


_DOTNET_DATE: Final = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2})(?: ([AP]M))?", re.IGNORECASE
)


def timestamp(value: object) -> datetime | None:
    """A server's time: ISO 8601 / RFC 3339 (any number of fraction digits; no offset means
    UTC, as Jellyfin's ``UtcTimestamp`` is written), or the invariant-culture text a
    Handlebars template renders (``12/4/2026 9:15:00 PM``, taken as UTC); else None."""
    raw = text(value, 64)
    if raw is None:
        return None
    parsed = _iso(raw) or _dotnet_invariant(raw)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.year <= 2200:
        return None
    return parsed


def _iso(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _dotnet_invariant(raw: str) -> datetime | None:
    match = _DOTNET_DATE.fullmatch(raw)
    if match is None:
        return None
    month, day, year, hour, minute, second = (int(g) for g in match.groups()[:6])
    meridiem = (match[7] or "").upper()
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


# Item types of the three servers (Jellyfin and Emby "Audio", Plex "track").
ITEM_KINDS: Final[dict[str, ItemKind]] = {
    "movie": "movie",
    "episode": "episode",
    "audio": "track",
    "track": "track",
}


def mapping(value: object) -> Mapping[str, Any]:
    """The value when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def required(value: object, field: str, hint: str = "") -> str:
    """The text of a field the payload cannot do without, else :class:`Unusable`."""
    found = text(value)
    if found is None:
        raise Unusable([f"{field}: required{hint}"])
    return found


def item_kind(value: object, field: str) -> ItemKind | Ignored:
    """A movie, an episode or a track; any other item type (trailers, music videos,
    channels...) is :class:`Ignored`; no type at all is :class:`Unusable`."""
    type_text = required(value, field)[:64]
    kind = ITEM_KINDS.get(type_text.casefold())
    if kind is None:
        return Ignored(f"item type {type_text} is not a movie, an episode or a track")
    return kind


# --- provider ids --------------------------------------------------------------------------

# A server's provider name (lower case, no spaces) -> the event's external_ids field.
_PROVIDERS: Final[dict[str, str]] = {
    "imdb": "imdb",
    "tmdb": "tmdb",
    "themoviedb": "tmdb",
    "tvdb": "tvdb",
    "thetvdb": "tvdb",
    "anidb": "anidb",
    "anilist": "anilist",
    "mal": "mal",
    "myanimelist": "mal",
    "musicbrainzrecording": "musicbrainz_recording",
    "musicbrainztrack": "musicbrainz_recording",
    "musicbrainzalbum": "musicbrainz_release",
    "musicbrainzreleasegroup": "musicbrainz_release_group",
    "musicbrainzartist": "musicbrainz_artists",
    "isrc": "isrc",
}
_INTEGER_IDS: Final = frozenset({"tmdb", "tvdb", "anidb", "anilist", "mal"})


@functools.lru_cache(maxsize=4096)
def provider_field(name: str) -> str | None:
    """The external_ids field a provider name stands for (``Imdb``, ``IMDB``,
    ``Provider_imdb``, ``MusicBrainzTrack``...), or None for names that are no id."""
    folded = re.sub(r"[\s_-]", "", name.casefold()).removeprefix("provider")
    return _PROVIDERS.get(folded)


def external_id(field_name: str, value: object) -> object | None:
    """The value in the event's terms, or None when it is no valid id of that kind (a bad
    id is dropped, not the event: the others may still name the item)."""
    if field_name in _INTEGER_IDS:
        return positive(integer(value))
    raw = text(value, 256)
    if raw is None:
        return None
    if field_name == "imdb":
        return raw if _IMDB.fullmatch(raw) else None
    if field_name.startswith("musicbrainz"):
        mbid = raw.lower()
        if _MBID.fullmatch(mbid) is None:
            return None
        return [mbid] if field_name == "musicbrainz_artists" else mbid
    return raw  # isrc


def external_ids(pairs: Iterable[tuple[str, object]]) -> dict[str, Any]:
    """external_ids from (provider name, value) pairs; the first valid value of a field wins."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        field_name = provider_field(name)
        if field_name is None or field_name in found:
            continue
        converted = external_id(field_name, value)
        if converted is not None:
            found[field_name] = converted
    return found


# --- from a notification to an event ---------------------------------------------------------


def _content_type(notification: Notification, source: Source) -> str:
    item = notification.item
    if item.kind != "episode":
        return item.kind
    if source.filters.is_anime_library(notification.library):
        return "anime_episode"
    ids = {**item.show_external_ids, **item.external_ids}
    anime = any(k in ids for k in _ANIME_IDS) and not any(k in ids for k in _GENERAL_IDS)
    return "anime_episode" if anime else "episode"


def _content(notification: Notification, source: Source) -> dict[str, Any]:
    item = notification.item
    content: dict[str, Any] = {
        "type": _content_type(notification, source),
        "id": stable_id(source.id, "item", item.key),
        "title": item.title,
    }
    optional: dict[str, Any] = {
        "duration_ms": positive(item.duration_ms),
        "year": item.year,
        "season": count(item.season),
        "number": count(item.number),
        "album": item.album,
        "album_artist": item.album_artist,
        "track_number": count(item.track_number),
        "external_ids": dict(item.external_ids) or None,
    }
    if item.kind == "track" and item.artists:
        optional["artists"] = list(item.artists)
    if item.kind == "episode" and item.show_title:
        show: dict[str, Any] = {"title": item.show_title}
        if item.show_year is not None:
            show["year"] = item.show_year
        if item.show_external_ids:
            show["external_ids"] = dict(item.show_external_ids)
        optional["show"] = show
    content.update({k: v for k, v in optional.items() if v is not None})
    return content


_NAMESPACE_BYTES: Final = INTAKE_NAMESPACE.bytes


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(INTAKE_NAMESPACE, name))``, without building a UUID object on the
    way (a webhook needs one per event; the unit tests check both agree)."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@functools.lru_cache(maxsize=65_536)
def stable_id(source_id: uuid.UUID, what: str, key: str) -> str:
    """The item or session id of the module docstring (the same ones come back with every
    progress tick, so each is worked out once)."""
    return uuid5_text(f"{source_id}|{what}|{key}")


def event_id(notification: Notification, source: Source, received_at: datetime) -> str:
    """The deterministic event id of the module docstring."""
    keys = notification.who.match_keys()
    when = notification.timestamp_text
    if when is None:
        when = f"bucket:{math.floor(received_at.timestamp() / TIME_BUCKET_S)}"
    if notification.position_ms is not None:
        position = str(notification.position_ms)
    elif notification.rating is not None:
        position = f"rating:{notification.rating:g}"
    else:
        position = ""
    parts = [
        str(source.id),
        keys[0] if keys else "",
        notification.item.key,
        notification.event_type,
        position,
        when,
    ]
    return uuid5_text("|".join(parts))


def _client(notification: Notification) -> dict[str, str] | None:
    client = {
        "name": notification.client_name and notification.client_name[:MAX_CLIENT_TEXT],
        "version": notification.client_version and notification.client_version[:MAX_CLIENT_VERSION],
        "device": notification.client_device and notification.client_device[:MAX_CLIENT_TEXT],
    }
    present = {k: v for k, v in client.items() if v}
    return present or None


def decide(notification: Notification, source: Source, received_at: datetime) -> Decision:
    """Map the server user, apply the source's filters, and build the event.

    Raises :class:`Unusable` when the result is not an event ingest could use (a video
    pause with neither a length nor a share watched, for example): nothing is published.
    """
    user = source.user_for(notification.who)
    if user is None:
        return Skip("unmapped")
    refusal = source.filters.refusal(
        notification.library, notification.who, notification.item.duration_ms
    )
    if refusal is not None:
        return Skip(refusal)
    occurred = notification.occurred_at or received_at
    body: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id(notification, source, received_at),
        "user_id": str(user),
        "action": notification.action.value,
        "occurred_at": occurred.isoformat(),
        "content": _content(notification, source),
    }
    if notification.session_key:
        body["session_id"] = stable_id(source.id, "session", notification.session_key)
    optional: dict[str, Any] = {
        "position_ms": count(notification.position_ms),
        "progress_percent": notification.progress_percent,
        "rating": notification.rating,
        "watched_at": notification.watched_at and notification.watched_at.isoformat(),
        "client": _client(notification),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return Publish(validated(body), body)


def validated(body: Mapping[str, Any]) -> PlaybackEvent:
    """The body as a PlaybackEvent, checked by the same rules ingest applies."""
    try:
        event = PlaybackEvent.model_validate(body)
    except ValidationError as exc:
        raise Unusable(schema_problems(exc)) from None
    problems = usability_problems(event)
    if problems:
        raise Unusable(problems)
    return event
