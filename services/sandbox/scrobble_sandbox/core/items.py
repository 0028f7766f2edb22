"""How Trakt and Simkl style bodies name a movie, show or episode, reduced to a stable key.

`media_key` is the first id present in a fixed order (or title + year). That alone would
treat {imdb, tmdb} and {tmdb} as two items, so the fakes resolve items through an
`ItemRegistry`, as the real services resolve them to one catalogue entry: an item sent with
ANY id (kind and value) of an item already seen, or with the title + year of one, is that
item, and the ids it brings are remembered for the next lookup. Episodes are named by their
show's identity + season + number, or by their own ids.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

ID_ORDER = ("trakt", "simkl", "imdb", "tmdb", "tvdb", "mal", "anilist", "anidb", "kitsu", "slug")


def is_number(value: Any) -> TypeGuard[int | float]:
    """True for an int or float that is not a bool (JSON true would pass isinstance int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def id_keys(obj: Any) -> list[str]:
    """Every `name:value` id of an item, in the fixed order then the rest by name."""
    if not isinstance(obj, dict):
        return []
    ids = obj.get("ids")
    if not isinstance(ids, dict):
        return []
    names = [n for n in ID_ORDER if n in ids] + sorted(n for n in ids if n not in ID_ORDER)
    return [f"{n}:{ids[n]}" for n in names if ids[n] not in (None, "", 0, False)]


def media_key(obj: Any) -> str | None:
    """The key of a movie or show: its first id, else title + year; None if neither."""
    keys = id_keys(obj)
    if keys:
        return keys[0]
    if isinstance(obj, dict):
        title, year = obj.get("title"), obj.get("year")
        if isinstance(title, str) and title.strip() and is_int(year):
            return f"title:{title.strip().lower()}:{year}"
    return None


def episode_key(show: Any, episode: Any) -> str | None:
    """Key of an episode named by its own ids, or by show + season + number."""
    if show is None:
        keys = id_keys(episode)
        return f"episode:{keys[0]}" if keys else None
    show_key = media_key(show)
    if show_key is None or not isinstance(episode, dict):
        return None
    season, number = episode.get("season", 1), episode.get("number")
    if not is_int(season) or not is_int(number):
        return None
    return f"show:{show_key}:s{season}e{number}"


def id_pairs(obj: Any) -> dict[str, str]:
    """The ids of an item as kind -> normalised value (`"tt1"` and `"TT1"`, 949 and `"949"`
    name the same item)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("ids"), dict):
        return {}
    return {
        str(n).lower(): str(v).strip().lower()
        for n, v in obj["ids"].items()
        if v not in (None, "", 0, False) and not isinstance(v, dict | list)
    }


def title_key(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    title, year = obj.get("title"), obj.get("year")
    if isinstance(title, str) and title.strip() and is_int(year):
        return f"title:{title.strip().lower()}:{year}"
    return None


@dataclass
class _Entity:
    """One item as the fake knows it: its key and every name it was sent under."""

    key: str
    ids: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)


class ItemRegistry:
    """The items a fake has seen, per namespace (movie, show, episode, ...).

    A lookup matches an item if ANY of the names sent (`kind:value` ids, episode names) is
    one of its names; failing that, if the title + year sent is that of an item whose ids do
    not contradict the ids sent. A new item is registered under the key given (or its first
    name). Names sent are then added to the item (an id kind it already has is kept).
    """

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], _Entity] = {}

    def media(self, namespace: str, obj: Any) -> str | None:
        """The key of a movie or show; None when it has neither ids nor title + year."""
        ids = id_pairs(obj)
        title = title_key(obj)
        if not ids and title is None:
            return None
        default = media_key(obj) or title or ""
        return self._resolve(namespace, ids, [], title, default)

    def episode(
        self, namespace: str, show_key: str | None, episode: Any, *, default_season: int = 1
    ) -> str | None:
        """The key of an episode named by `show_key` + season + number and/or its own ids."""
        names: list[str] = []
        if show_key is not None and isinstance(episode, dict):
            season, number = episode.get("season", default_season), episode.get("number")
            if is_int(season) and is_int(number):
                names.append(f"show:{show_key}:s{season}e{number}")
        ids = id_pairs(episode)
        if not names and not ids:
            return None
        own = id_keys(episode)
        default = names[0] if names else f"episode:{own[0]}"
        return self._resolve(namespace, ids, names, None, default)

    def _resolve(
        self,
        namespace: str,
        ids: dict[str, str],
        names: list[str],
        title: str | None,
        default: str,
    ) -> str:
        id_names = [f"{k}:{v}" for k, v in _ordered(ids)]
        entity = self._find(namespace, names + id_names)
        if entity is None and title is not None:
            candidate = self._names.get((namespace, title))
            if candidate is not None and not _contradicts(candidate.ids, ids):
                entity = candidate
        if entity is None:
            entity = _Entity(default)
        for kind, value in ids.items():
            entity.ids.setdefault(kind, value)
        own = [f"{k}:{v}" for k, v in entity.ids.items()]
        for name in [*names, *own, *([title] if title else [])]:
            # A name already held by another item stays with it.
            self._names.setdefault((namespace, name), entity)
        return entity.key

    def _find(self, namespace: str, names: Iterable[str]) -> _Entity | None:
        for name in names:
            entity = self._names.get((namespace, name))
            if entity is not None:
                return entity
        return None

    def __len__(self) -> int:
        return len({id(e) for e in self._names.values()})


def _ordered(ids: dict[str, str]) -> list[tuple[str, str]]:
    names = [n for n in ID_ORDER if n in ids] + sorted(n for n in ids if n not in ID_ORDER)
    return [(n, ids[n]) for n in names]


def _contradicts(known: dict[str, str], sent: dict[str, str]) -> bool:
    return any(kind in known and known[kind] != value for kind, value in sent.items())
