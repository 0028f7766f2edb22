"""Emby (native webhooks) to a :class:`Notification`. Pure.

- ``playback.start`` -> start, ``playback.pause`` -> pause, ``playback.unpause`` -> resume,
  ``playback.stop`` -> stop; ``item.markplayed`` -> mark_watched (dated
  ``Item.UserData.LastPlayedDate``, else the webhook's ``Date``); ``item.rate`` -> rate when
  the payload carries a ``Rating`` of 1 to 10 (``Item.UserData.Rating``); a like or a
  favourite alone is no rating and is ignored. ``item.markunplayed`` and everything else
  (``library.new``, ``system.notificationtest``...) are ignored.
- ``ProviderIds`` keys are matched whatever their case (``Imdb`` and ``IMDB`` both occur);
  keys that are no id (``Official Website``) are left out. An episode's ids are its own.
- Ticks / 10,000 = milliseconds (``PlaybackInfo.PositionTicks``, ``Item.RunTimeTicks``).
- The player session is ``PlaybackInfo.PlaySessionId``, else ``Session.Id`` + the item.
- ``Date`` is the server's time of the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from scrobble_intake.translate.common import (
    Ignored,
    Item,
    Notification,
    Unusable,
    external_ids,
    integer,
    item_kind,
    mapping,
    number,
    required,
    text,
    ticks_to_ms,
    timestamp,
    year_of,
)
from scrobble_shared.events import Action
from scrobble_shared.sources import ServerUser

EVENTS: Final[dict[str, Action]] = {
    "playback.start": Action.START,
    "playback.pause": Action.PAUSE,
    "playback.unpause": Action.RESUME,
    "playback.stop": Action.STOP,
    "item.markplayed": Action.MARK_WATCHED,
    "item.rate": Action.RATE,
}
_PLAY_ACTIONS: Final = frozenset({Action.START, Action.PAUSE, Action.RESUME, Action.STOP})


def read(payload: Mapping[str, Any]) -> Notification | Ignored:
    name = required(payload.get("Event"), "Event", " (is this an Emby webhook payload?)")[:64]
    action = EVENTS.get(name.casefold())
    if action is None:
        return Ignored(f"{name} is not a playback event")
    raw_item = payload.get("Item")
    if not isinstance(raw_item, Mapping):
        raise Unusable(["Item: required, an object"])
    item = _item(raw_item)
    if isinstance(item, Ignored):
        return item
    user = mapping(payload.get("User"))
    session, playback = mapping(payload.get("Session")), mapping(payload.get("PlaybackInfo"))
    user_data = mapping(raw_item.get("UserData"))
    when = timestamp(payload.get("Date"))
    position: int | None = None
    rating: float | None = None
    watched = None
    if action in _PLAY_ACTIONS:
        position = ticks_to_ms(playback.get("PositionTicks"))
        if position is None:
            if action is not Action.START:
                raise Unusable([f"PlaybackInfo.PositionTicks: needed for {name}"])
            position = 0
    elif action is Action.RATE:
        rating = number(user_data.get("Rating"))
        if rating is None or not 1 <= rating <= 10:
            return Ignored("no rating from 1 to 10 (a like or a favourite alone)")
    else:
        watched = timestamp(user_data.get("LastPlayedDate")) or when
    return Notification(
        event_type=name,
        action=action,
        who=ServerUser(id=text(user.get("Id"), 256), name=text(user.get("Name"), 256)),
        item=item,
        occurred_at=when,
        timestamp_text=text(payload.get("Date"), 64),
        position_ms=position,
        rating=rating,
        watched_at=watched,
        session_key=_session(playback, session, item.key),
        client_name=text(session.get("Client"), 256),
        client_version=text(session.get("ApplicationVersion"), 64),
        client_device=text(session.get("DeviceName"), 256),
    )


def _session(playback: Mapping[str, Any], session: Mapping[str, Any], item: str) -> str | None:
    play_session = text(playback.get("PlaySessionId"), 256)
    if play_session:
        return play_session
    session_id = text(session.get("Id"), 256)
    return f"{session_id}|{item}" if session_id else None


def _item(item: Mapping[str, Any]) -> Item | Ignored:
    kind = item_kind(item.get("Type"), "Item.Type")
    if isinstance(kind, Ignored):
        return kind
    title = required(item.get("Name"), "Item.Name")
    providers = mapping(item.get("ProviderIds"))
    series = text(item.get("SeriesName"))
    artists = _artists(item)
    season, episode = integer(item.get("ParentIndexNumber")), integer(item.get("IndexNumber"))
    key = text(item.get("Id"), 256)
    return Item(
        key=key or "|".join(str(p) for p in (kind, series, season, episode, title)),
        kind=kind,
        title=title,
        duration_ms=ticks_to_ms(item.get("RunTimeTicks")) or None,
        year=year_of(item.get("ProductionYear")),
        show_title=series if kind == "episode" else None,
        season=season if kind == "episode" else None,
        number=episode if kind == "episode" else None,
        artists=artists if kind == "track" else (),
        album=text(item.get("Album")) if kind == "track" else None,
        album_artist=text(item.get("AlbumArtist")) if kind == "track" else None,
        track_number=episode if kind == "track" else None,
        external_ids=external_ids((str(k), v) for k, v in providers.items()),
    )


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _artists(item: Mapping[str, Any]) -> tuple[str, ...]:
    found = [text(n) for n in _list(item.get("Artists"))]
    if not any(found):
        found = [text(mapping(e).get("Name")) for e in _list(item.get("ArtistItems"))]
    if not any(found):
        found = [text(item.get("AlbumArtist"))]
    return tuple(dict.fromkeys(n for n in found if n))
