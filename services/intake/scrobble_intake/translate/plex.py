"""Plex (native webhooks, Plex Pass) to a :class:`Notification`. Pure.

- ``media.play`` -> start, ``media.pause`` -> pause, ``media.resume`` -> resume,
  ``media.stop`` -> stop, ``media.rate`` -> rate; ``media.scrobble`` -> progress at 90 %.
- Plex sends nothing while playing, and ``media.scrobble`` ("viewed past 90 %") carries no
  position. It becomes a progress event with ``progress_percent`` 90 (or the share its
  ``viewOffset`` shows, when higher) and a position of 90 % of the duration: ingest then
  counts the play, watched for video (at its stop, or after the silence timeout when no
  stop comes) and listened for music. A ``mark_watched`` would not do: it goes out only
  with "sync watch status" on, and beside the play's own stop it would be a second entry.
- ``viewOffset`` and ``duration`` are milliseconds. When ``viewOffset`` is left out, 0 is
  sent: it lowers that one event's position, never how far the play got.
- Ids come from the ``Guid`` array (``imdb://``, ``tmdb://``, ``tvdb://``: the item's own,
  an episode's for an episode) and from legacy agent guids (``com.plexapp.agents.imdb://tt..``;
  ``...thetvdb://SERIES/SEASON/EPISODE`` and ``...themoviedb://SHOW/SEASON/EPISODE`` name
  the show; ``...hama://anidb-N`` an AniDB series). ``plex://`` guids are Plex's own.
- ``rating`` (top level, else ``Metadata.userRating``) is Plex's 0-10 scale, half stars
  doubled (3 stars are 6.0); below 1 the rating was cleared and nothing is sent.
- A Plex account's webhook also receives the plays of everyone on a server it owns, with
  ``user: false``: those are not the account's own (:class:`ServerUser` ``own_account``).
- The player session is ``Player.uuid`` + ``ratingKey``; the library ``librarySectionTitle``.
- Plex sends no time of its own. In place of the server's timestamp the event id takes the
  item's ``viewCount`` and ``lastViewedAt`` (absent: never viewed), which Plex changes when
  a watch or listen completes: a webhook resent minutes or hours later is then the same
  event, and the next complete watch is another. (A time bucket would let a late resend
  start a second play and, with its stop, a second scrobble.) The price: a second partial
  play from the same position before Plex counted the first is taken as a resend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from scrobble_intake.translate.common import (
    Ignored,
    Item,
    ItemKind,
    Notification,
    Unusable,
    external_ids,
    flag,
    integer,
    item_kind,
    mapping,
    number,
    positive,
    required,
    text,
    year_of,
)
from scrobble_shared.events import Action
from scrobble_shared.sources import ServerUser

EVENTS: Final[dict[str, Action]] = {
    "media.play": Action.START,
    "media.pause": Action.PAUSE,
    "media.resume": Action.RESUME,
    "media.stop": Action.STOP,
    "media.scrobble": Action.PROGRESS,
    "media.rate": Action.RATE,
}
SCROBBLED_PERCENT: Final = 90.0
_NEW_GUID: Final = re.compile(r"(imdb|tmdb|tvdb)://(.+)")
_LEGACY_GUID: Final = re.compile(r"com\.plexapp\.agents\.([a-z]+)://([^?]+)")
_HAMA: Final = re.compile(r"anidb-(\d+)")


def read(payload: Mapping[str, Any]) -> Notification | Ignored:
    name = required(payload.get("event"), "event", " (is this a Plex webhook payload?)")[:64]
    action = EVENTS.get(name)
    if action is None:
        return Ignored(f"{name} is not a playback event")
    metadata = payload.get("Metadata")
    if not isinstance(metadata, Mapping):
        raise Unusable(["Metadata: required, an object"])
    item = _item(metadata)
    if isinstance(item, Ignored):
        return item
    account, player = mapping(payload.get("Account")), mapping(payload.get("Player"))
    account_id = integer(account.get("id"))
    who = ServerUser(
        id=str(account_id) if account_id is not None else text(account.get("id"), 256),
        name=text(account.get("title"), 256),
        own_account=flag(payload.get("user")) is not False,
    )
    position = positive(integer(metadata.get("viewOffset")))
    progress: float | None = None
    rating: float | None = None
    if action is Action.PROGRESS:
        position, progress = _scrobbled(position, item.duration_ms)
    elif action is Action.RATE:
        rating = number(payload.get("rating"))
        if rating is None:
            rating = number(metadata.get("userRating"))
        if rating is None or rating < 1:
            return Ignored("rating cleared")
        rating = min(rating, 10.0)
        position = None
    else:
        position = position or 0
    player_id = text(player.get("uuid"), 256)
    views = integer(metadata.get("viewCount")) or 0
    last_viewed = text(metadata.get("lastViewedAt"), 32) or ""
    return Notification(
        event_type=name,
        timestamp_text=f"views:{views}:{last_viewed}",
        action=action,
        who=who,
        item=item,
        library=text(metadata.get("librarySectionTitle"), 256),
        position_ms=position,
        progress_percent=progress,
        rating=rating,
        session_key=f"{player_id}|{item.key}" if player_id else None,
        client_device=text(player.get("title"), 256),
    )


def _scrobbled(position: int | None, duration: int | None) -> tuple[int, float]:
    """Position and share watched of a ``media.scrobble``: at least Plex's 90 %."""
    share = SCROBBLED_PERCENT
    if position is not None and duration:
        share = max(share, min(position / duration * 100, 100.0))
    if position is None:
        position = int(duration * SCROBBLED_PERCENT / 100) if duration else 0
    return position, share


def _item(metadata: Mapping[str, Any]) -> Item | Ignored:
    kind = item_kind(metadata.get("type"), "Metadata.type")
    if isinstance(kind, Ignored):
        return kind
    title = required(metadata.get("title"), "Metadata.title")
    own, show, legacy = _ids(metadata, kind)
    grandparent, parent = text(metadata.get("grandparentTitle")), text(metadata.get("parentTitle"))
    key = text(metadata.get("ratingKey"), 256) or text(metadata.get("guid"), 256)
    season, number_ = integer(metadata.get("parentIndex")), integer(metadata.get("index"))
    if kind == "episode":
        season = season if season is not None else legacy[0]
        number_ = number_ if number_ is not None else legacy[1]
    artist = text(metadata.get("originalTitle")) or grandparent
    return Item(
        key=key or "|".join(str(p) for p in (kind, grandparent, season, number_, title)),
        kind=kind,
        title=title,
        duration_ms=positive(integer(metadata.get("duration"))),
        year=year_of(metadata.get("year")),
        show_title=grandparent if kind == "episode" else None,
        season=season if kind == "episode" else None,
        number=number_ if kind == "episode" else None,
        artists=(artist,) if kind == "track" and artist else (),
        album=parent if kind == "track" else None,
        album_artist=grandparent if kind == "track" else None,
        track_number=number_ if kind == "track" else None,
        external_ids=own,
        show_external_ids=show,
    )


def _ids(
    metadata: Mapping[str, Any], kind: ItemKind
) -> tuple[dict[str, Any], dict[str, Any], tuple[int | None, int | None]]:
    """The item's own ids, its show's ids, and the season and episode a legacy guid names."""
    pairs: list[tuple[str, object]] = []
    guids = metadata.get("Guid")
    for entry in guids if isinstance(guids, list) else []:
        found = _NEW_GUID.fullmatch(text(mapping(entry).get("id"), 256) or "")
        if found:
            pairs.append((found[1], found[2]))
    show_pairs: list[tuple[str, object]] = []
    season_episode: tuple[int | None, int | None] = (None, None)
    legacy = _LEGACY_GUID.match(text(metadata.get("guid"), 512) or "")
    if legacy:
        agent, rest = legacy[1], legacy[2].split("/")
        if agent == "hama":
            anidb = _HAMA.match(rest[0])
            if anidb:
                show_pairs.append(("anidb", anidb[1]))
            if kind == "episode" and len(rest) >= 3:
                season_episode = (integer(rest[1]), integer(rest[2]))
        elif kind == "episode" and agent in ("thetvdb", "themoviedb") and len(rest) >= 3:
            show_pairs.append((agent, rest[0]))
            season_episode = (integer(rest[1]), integer(rest[2]))
        elif kind != "episode" and agent in ("imdb", "themoviedb", "thetvdb"):
            pairs.append((agent, rest[0]))
    return external_ids(pairs), external_ids(show_pairs), season_episode
