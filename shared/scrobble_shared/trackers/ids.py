"""What every service's resolver is made of, and the pure helpers they share. No I/O.

A resolver looks at what an event carries and makes a :class:`Plan`: the ways to name the
item to its service, most certain first. Each step is either :class:`Ready` (the item can
be sent as it is: it carries the service's own id, another id the service accepts, or show
ids with season and episode numbers) or a :class:`Lookup` (a question to the service: an id
lookup or a title search). The dispatcher walks the plan: the first ``Ready`` step, or the
first lookup that finds the item, decides; when every step fails the item is unresolved,
with :attr:`Plan.unresolved` and what each lookup said as the readable reason.

A title search counts only on an exact match: the normalised title (:func:`normalise_title`)
*and* the year must both be equal, and exactly one item of the service may match. A near
match (another year, extra words, two equal candidates) is "not found", never a guess.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal, Protocol
from uuid import UUID

from pydantic import ValidationError

from scrobble_shared.events import Content, ContentType, ExternalIds
from scrobble_shared.trackers.http import HttpRequest, HttpResponse, UserCredentials
from scrobble_shared.trackers.pace import SEND_MARGIN, PaceKey

# ExternalIds field name -> value, as the playback event names ids.
IdMap = dict[str, int | str]


_ID_NAMES: Final = {"mal": "MyAnimeList", "imdb": "IMDb", "tmdb": "TMDB", "traktslug": "Trakt slug"}


@dataclass(frozen=True)
class Lookup:
    """One question to a service. ``key`` names it in the shared cache (unique per
    service: the same question from any play, user or replica is the same key); ``target``
    says whose ids the answer gives (the item's own, or its show's)."""

    key: str
    kind: Literal["search", "id"]
    media: Literal["movie", "show", "episode", "anime"]
    target: Literal["item", "show"]
    title: str | None = None
    year: int | None = None
    id_type: str | None = None
    id_value: str | None = None

    def describe(self) -> str:
        if self.kind == "search":
            year = f" ({self.year})" if self.year is not None else ""
            return f'no exact title/year match for {self.media} "{self.title}"{year}'
        name = _ID_NAMES.get(self.id_type or "", self.id_type)
        return f"no {self.media} with {name} id {self.id_value}"


@dataclass(frozen=True)
class Ready:
    """The item can be sent as it is; ``why`` is for logs and tests."""

    why: str


Step = Ready | Lookup


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    # The reason in history when no step names the item (a lookup's own words are added).
    unresolved: str


@dataclass(frozen=True)
class Found:
    ids: IdMap


@dataclass(frozen=True)
class NotFound:
    reason: str


LookupResult = Found | NotFound


class UnexpectedAnswer(ValueError):
    """A 2xx whose body is not the answer a lookup reads: transient, never cached."""


class ServiceResolver(Protocol):
    """The pure part of one service's resolution."""

    service: str
    label: str  # the service as people write it: "Trakt"

    def plan(self, content: Content) -> Plan: ...

    def build(self, lookup: Lookup, user: UserCredentials) -> HttpRequest: ...

    def parse(self, lookup: Lookup, response: HttpResponse) -> LookupResult:
        """What a 2xx answer says; raises :class:`UnexpectedAnswer` when it is not one."""
        ...

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        """The rate limits a lookup counts against (read limits, per EXTERNAL_APIS.md)."""
        ...


# --- titles --------------------------------------------------------------------------------

_NOT_WORD: Final = re.compile(r"[^\w\s]+")


def normalise_title(title: str) -> str:
    """A title reduced to what two spellings of the same title share: accents, case,
    punctuation and runs of spaces dropped, ``&`` read as "and". Words are kept, so
    "Heat" and "Heat Wave" stay different."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("&", " and ")
    return " ".join(_NOT_WORD.sub(" ", text).split())


def exact_match(title: str, year: int | None, candidates: Iterable[Any], cand_year: Any) -> bool:
    """True when one of ``candidates`` is ``title`` once normalised and the years agree."""
    if year is None or not isinstance(cand_year, int) or isinstance(cand_year, bool):
        return False
    wanted = normalise_title(title)
    return cand_year == year and any(
        isinstance(c, str) and normalise_title(c) == wanted for c in candidates
    )


def search_key(media: str, title: str, year: int | None) -> str:
    return f"search:{media}:{normalise_title(title)}:{year if year is not None else ''}"


def search(media: Literal["movie", "show", "anime"], title: str, year: int, target: str) -> Lookup:
    return Lookup(
        key=search_key(media, title, year),
        kind="search",
        media=media,
        target="show" if target == "show" else "item",
        title=title,
        year=year,
    )


def id_lookup(
    media: Literal["movie", "show", "episode", "anime"], id_type: str, value: int | str, target: str
) -> Lookup:
    text = str(value).strip()
    return Lookup(
        key=f"id:{media}:{id_type}:{text.lower()}",
        kind="id",
        media=media,
        target="show" if target == "show" else "item",
        id_type=id_type,
        id_value=text,
    )


# --- describing and changing content -------------------------------------------------------


def describe(content: Content) -> str:
    """The item as a person reads it in a history list."""
    if content.type is ContentType.MOVIE:
        year = f" ({content.year})" if content.year is not None else ""
        return f'movie "{content.title}"{year}'
    show = content.show
    name = f'"{show.title}"' + (f" ({show.year})" if show.year is not None else "") if show else ""
    if content.season is not None and content.number is not None:
        where = f"S{content.season:02d}E{content.number:02d}"
    elif content.number is not None:
        where = f"episode {content.number}"
    else:
        where = f'"{content.title}"'
    return f"{name} {where}".strip() if name else f'episode "{content.title}"'


def unresolved_reason(label: str, content: Content, detail: str) -> str:
    return f"not found at {label}: {describe(content)}: {detail}"


def with_ids(content: Content, target: Literal["item", "show"], ids: Mapping[str, Any]) -> Content:
    """The content with ``ids`` added to the item's or its show's external ids (ids it
    already carries win; values the event model would refuse are dropped)."""
    if target == "show" and content.show is not None:
        show = content.show
        merged = merge_ids(show.external_ids, ids)
        return content.model_copy(update={"show": show.model_copy(update={"external_ids": merged})})
    return content.model_copy(update={"external_ids": merge_ids(content.external_ids, ids)})


def merge_ids(existing: ExternalIds | None, new: Mapping[str, Any]) -> ExternalIds:
    known = existing.model_dump(exclude_none=True) if existing is not None else {}
    merged = dict(known)
    for name, value in new.items():
        if name in merged or name not in ExternalIds.model_fields:
            continue
        try:
            ExternalIds.model_validate({name: value})
        except ValidationError:
            continue
        merged[name] = value
    return ExternalIds.model_validate(merged)


def present(ids: ExternalIds | None, names: Iterable[str]) -> dict[str, int | str]:
    """The ids among ``names`` the event carries (blank text counts as absent)."""
    if ids is None:
        return {}
    found: dict[str, int | str] = {}
    for name in names:
        value = getattr(ids, name)
        if isinstance(value, str):
            value = value.strip() or None
        if value is not None:
            found[name] = value
    return found


def positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number > 0 else None


def read_pace(key: str, published: timedelta) -> PaceKey:
    """A read-limit key, spaced like the write keys (published interval plus the margin)."""
    return PaceKey(key, published + SEND_MARGIN)
