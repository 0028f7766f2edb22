"""Jellyfin (the official jellyfin-plugin-webhook, "Generic" destination) to a
:class:`Notification`. Pure.

The body is whatever Handlebars template the admin wrote, or with "Send All Properties"
the plugin's whole data object, so any field may be missing: what is there is used, and
only what makes the event unusable is refused. Values may come as JSON numbers or as text
(a template writes ``"{{RunTimeTicks}}"`` as easily as ``{{RunTimeTicks}}``).

- ``PlaybackStart`` -> start, ``PlaybackStop`` -> stop. ``PlaybackProgress`` -> pause when
  the player reports itself paused (``IsPaused``, not ``IsAutomated``), else progress: the
  server's own periodic tick (``IsAutomated``) repeats the paused state and must not
  become a pause call every ten seconds, and a client's report after unpausing looks the
  same as its periodic one, so no resume is guessed from it.
- ``UserDataSaved`` -> mark_watched when ``SaveReason`` is ``TogglePlayed`` and ``Played``
  is true (dated ``LastPlayedDate``), rate when it is ``UpdateUserRating`` with a
  ``Rating`` of 1 to 10. Saves made by playback itself (``PlaybackFinished``,
  ``PlaybackProgress``, ``PlaybackStart``) are ignored: the play already reported itself
  through its stop, and a second "watched" would be a second history entry at Trakt. A
  template without ``SaveReason`` cannot tell the two apart, so such saves are ignored.
- Ticks / 10,000 = milliseconds. ``PlayedToCompletion`` is not used (it has been seen true
  at 7 %); how much was played comes from the position.
- The player session is ``DeviceId`` + ``ItemId``; the library is
  ``LibraryNameByMaxPath`` (newer plugins), else ``LibraryName`` if a template names one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from scrobble_intake.translate.common import (
    Ignored,
    Item,
    Notification,
    Unusable,
    external_ids,
    flag,
    integer,
    item_kind,
    number,
    required,
    text,
    ticks_to_ms,
    timestamp,
    year_of,
)
from scrobble_shared.events import Action
from scrobble_shared.sources import ServerUser

PLAYBACK: Final[dict[str, Action]] = {
    "PlaybackStart": Action.START,
    "PlaybackProgress": Action.PROGRESS,
    "PlaybackStop": Action.STOP,
}
USER_DATA_SAVED: Final = "UserDataSaved"
# Saves that playback makes by itself; the play is already reported by its own events.
_PLAYBACK_SAVES: Final = frozenset({"playbackfinished", "playbackprogress", "playbackstart"})
_RUNTIME: Final = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})")


def read(payload: Mapping[str, Any]) -> Notification | Ignored:
    hint = " (is this a jellyfin-plugin-webhook body?)"
    kind_text = required(payload.get("NotificationType"), "NotificationType", hint)[:64]
    if kind_text not in PLAYBACK and kind_text != USER_DATA_SAVED:
        return Ignored(f"{kind_text} is not a playback event")
    item = _item(payload)
    if isinstance(item, Ignored):
        return item
    when = payload.get("UtcTimestamp") or payload.get("Timestamp")
    said = _Said(
        event_type=kind_text,
        who=ServerUser(
            id=text(payload.get("UserId"), 256),
            name=text(payload.get("NotificationUsername") or payload.get("Username")),
        ),
        item=item,
        library=_library(payload),
        occurred_at=timestamp(when),
        timestamp_text=text(when, 64),
        client_name=text(payload.get("ClientName"), 256),
        client_device=text(payload.get("DeviceName"), 256),
    )
    if kind_text == USER_DATA_SAVED:
        return _user_data(payload, said)
    action = PLAYBACK[kind_text]
    position = ticks_to_ms(payload.get("PlaybackPositionTicks"))
    if position is None:
        if action is not Action.START:
            raise Unusable([f"PlaybackPositionTicks: needed for {kind_text}"])
        position = 0
    if action is Action.PROGRESS:
        action = _progress_action(payload)
    device = text(payload.get("DeviceId"), 256)
    session = f"{device}|{item.key}" if device else None
    return said.notification(action, position_ms=position, session_key=session)


@dataclass(frozen=True)
class _Said:
    """What every kind of notification says: who, what, where, when."""

    event_type: str
    who: ServerUser
    item: Item
    library: str | None
    occurred_at: datetime | None
    timestamp_text: str | None
    client_name: str | None
    client_device: str | None

    def notification(
        self,
        action: Action,
        *,
        position_ms: int | None = None,
        session_key: str | None = None,
        watched_at: datetime | None = None,
        rating: float | None = None,
    ) -> Notification:
        return Notification(
            event_type=self.event_type,
            action=action,
            who=self.who,
            item=self.item,
            library=self.library,
            occurred_at=self.occurred_at,
            timestamp_text=self.timestamp_text,
            position_ms=position_ms,
            rating=rating,
            watched_at=watched_at,
            session_key=session_key,
            client_name=self.client_name,
            client_device=self.client_device,
        )


def _progress_action(payload: Mapping[str, Any]) -> Action:
    paused, automated = flag(payload.get("IsPaused")), flag(payload.get("IsAutomated"))
    return Action.PAUSE if paused and not automated else Action.PROGRESS


def _user_data(payload: Mapping[str, Any], said: _Said) -> Notification | Ignored:
    reason = (text(payload.get("SaveReason"), 64) or "").casefold()
    if not reason:
        return Ignored("UserDataSaved without SaveReason (add it to the template)")
    if reason in _PLAYBACK_SAVES:
        return Ignored(f"UserDataSaved by playback ({payload.get('SaveReason')})")
    if reason == "toggleplayed":
        if flag(payload.get("Played")) is not True:
            return Ignored("marked unplayed")
        watched = timestamp(payload.get("LastPlayedDate")) or said.occurred_at
        return said.notification(Action.MARK_WATCHED, watched_at=watched)
    if reason == "updateuserrating":
        rating = number(payload.get("Rating"))
        if rating is None or not 1 <= rating <= 10:
            return Ignored("no rating from 1 to 10")
        return said.notification(Action.RATE, rating=rating)
    return Ignored(f"UserDataSaved ({payload.get('SaveReason')}) changes nothing we send")


def _item(payload: Mapping[str, Any]) -> Item | Ignored:
    kind = item_kind(payload.get("ItemType"), "ItemType")
    if isinstance(kind, Ignored):
        return kind
    season = integer(payload.get("SeasonNumber") or payload.get("SeasonNumber00"))
    episode = integer(payload.get("EpisodeNumber") or payload.get("EpisodeNumber00"))
    series = text(payload.get("SeriesName"))
    title = text(payload.get("Name"))
    if title is None and kind == "episode" and series is not None and episode is not None:
        title = f"{series} {season or 0}x{episode:02d}"
    if title is None:
        raise Unusable(["Name: required"])
    item_id = text(payload.get("ItemId"), 256)
    artist = text(payload.get("Artist"))
    album = text(payload.get("Album"))
    # The data object gives an episode the series' production year.
    year = year_of(payload.get("Year"))
    key = item_id or "|".join(str(p) for p in (kind, series, season, episode, artist, album, title))
    return Item(
        key=key,
        kind=kind,
        title=title,
        duration_ms=_duration(payload),
        year=year if kind != "episode" else None,
        show_title=series if kind == "episode" else None,
        show_year=year if kind == "episode" else None,
        season=season if kind == "episode" else None,
        number=episode if kind == "episode" else None,
        artists=(artist,) if kind == "track" and artist else (),
        album=album if kind == "track" else None,
        external_ids=external_ids(
            (name, value) for name, value in payload.items() if name.startswith("Provider_")
        ),
    )


def _duration(payload: Mapping[str, Any]) -> int | None:
    ticks = ticks_to_ms(payload.get("RunTimeTicks"))
    if ticks:
        return ticks
    runtime = text(payload.get("RunTime"), 32)
    match = _RUNTIME.fullmatch(runtime) if runtime else None
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return total * 1000 or None


def _library(payload: Mapping[str, Any]) -> str | None:
    for name in ("LibraryNameByMaxPath", "LibraryName", "LibraryNameByMinPath"):
        found = text(payload.get(name), 256)
        if found is not None:
            return found
    return None
