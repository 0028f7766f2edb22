"""Two-way sync, the pure part: what an imported item means for the user's other
connections, by the same rules a playback event follows (``scrobble_shared.work``).

An imported play is a ``mark_watched`` at its own time and an imported rating a ``rate``
event: ``mark_watched_work`` / ``rating_work`` decide which connections want it (enabled,
``sync_watch_status`` / ``sync_ratings`` on, a service that takes the item). The work's
``dedupe_key`` names the imported item (source service, kind, item key, time), so
importing the same history again queues nothing twice. Never back to the service the item
came from. Work for plays that already went out to (or came in from) the other connection
is dropped by the caller after asking Postgres (:func:`same_item` decides what matches).

Music plays are not synced across (Last.fm and ListenBrainz keep no watch status); AniList
list entries are progress, not plays, and are not synced either.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from scrobble_shared.events import PlaybackEvent
from scrobble_shared.trackers.history import ImportedItem
from scrobble_shared.trackers.ids import merge_ids
from scrobble_shared.work import ConnectionRules, Work, mark_watched_work, rating_work

IMPORT_NAMESPACE: Final = uuid.UUID("6f9c1e52-3c1b-4d8e-9a37-2b1f0c7d5e44")
UNTITLED: Final = "(untitled)"
# How far apart two records of one play may be and still be the same play: a scrobble
# reaches the service (which records its own time) after the play, late when a service
# or the dispatcher was away for a while.
MATCH_WINDOW: Final = timedelta(hours=6)
_ID_NAMES: Final = ("imdb", "tmdb", "tvdb", "trakt", "simkl", "mal", "anilist", "anidb")


def content_id(service: str, item: ImportedItem) -> uuid.UUID:
    """A stable id for the item as a playback event's ``content.id`` (not a media server's)."""
    return uuid.uuid5(IMPORT_NAMESPACE, f"{service}:{item.item_key}")


def content_of(service: str, item: ImportedItem) -> dict[str, Any]:
    """The item as a playback event's ``content`` object (ids the model refuses dropped)."""
    content: dict[str, Any] = {
        "type": item.content_type,
        "id": str(content_id(service, item)),
        "title": item.title or UNTITLED,
    }
    ids = merge_ids(None, item.external_ids).model_dump(exclude_none=True)
    if ids:
        content["external_ids"] = ids
    if item.year is not None and 1800 <= item.year <= 2200:
        content["year"] = item.year
    if item.show is not None:
        show: dict[str, Any] = {"title": item.show.get("title") or UNTITLED}
        if item.show.get("year") is not None:
            show["year"] = item.show["year"]
        show_ids = merge_ids(None, item.show.get("external_ids") or {}).model_dump(
            exclude_none=True
        )
        if show_ids:
            show["external_ids"] = show_ids
        content["show"] = show
    if item.season is not None:
        content["season"] = item.season
    if item.number is not None:
        content["number"] = item.number
    if item.artists:
        content["artists"] = list(item.artists)
    if item.album:
        content["album"] = item.album
    return content


def dedupe_key(service: str, item: ImportedItem) -> str:
    return f"import:{service}:{item.kind}:{item.item_key}:{item.occurred_at.isoformat()}"[:512]


def event_of(
    user_id: uuid.UUID, service: str, item: ImportedItem, content: Mapping[str, Any]
) -> PlaybackEvent | None:
    """The playback event an imported play or rating stands for; None for anything else."""
    if item.kind == "play" and item.content_type != "track":
        action: dict[str, Any] = {"action": "mark_watched", "watched_at": item.occurred_at}
    elif item.kind == "rating" and item.rating is not None:
        action = {"action": "rate", "rating": item.rating}
    else:
        return None
    return PlaybackEvent.model_validate(
        {
            "event_id": str(uuid.uuid5(IMPORT_NAMESPACE, dedupe_key(service, item))),
            "user_id": str(user_id),
            "occurred_at": item.occurred_at,
            "content": dict(content),
            **action,
        }
    )


def sync_work(
    source: ConnectionRules,
    others: Sequence[ConnectionRules],
    event: PlaybackEvent,
    item: ImportedItem,
) -> list[Work]:
    """Work for the user's other connections (not the source's service) from one item."""
    found: list[Work] = []
    for rules in others:
        if rules.id == source.id or rules.service == source.service:
            continue
        if item.kind == "play":
            works = mark_watched_work(rules, event)
        else:
            works = rating_work(rules, event)
        found += [
            dataclasses.replace(w, dedupe_key=dedupe_key(source.service, item)) for w in works
        ]
    return found


def _ids(node: Mapping[str, Any] | None) -> dict[str, str]:
    ids = (node or {}).get("external_ids") if node is not None else None
    if not isinstance(ids, Mapping):
        return {}
    return {n: str(ids[n]).casefold() for n in _ID_NAMES if ids.get(n) is not None}


def _shares_id(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    return any(b.get(name) == value for name, value in a.items())


def same_item(content: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two content objects name the same movie or episode: a shared id of the
    item, or (episodes) a shared id of the show with the same season and number."""
    video = {"movie": "movie", "episode": "episode", "anime_episode": "episode"}
    if video.get(str(content.get("type"))) != video.get(str(other.get("type"))):
        return False
    if _shares_id(_ids(content), _ids(other)):
        return True
    if content.get("number") is None or content.get("number") != other.get("number"):
        return False
    if (content.get("season") or 1) != (other.get("season") or 1):
        return False
    show, other_show = content.get("show"), other.get("show")
    if not isinstance(show, Mapping) or not isinstance(other_show, Mapping):
        return False
    return _shares_id(_ids(show), _ids(other_show))
