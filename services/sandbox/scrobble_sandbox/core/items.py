"""How Trakt and Simkl style bodies name a movie, show or episode, reduced to a stable key.

`media_key` is the first id present in a fixed order (or title + year). That alone would
treat {imdb, tmdb} and {tmdb} as two items, so the fakes resolve items through an
`ItemRegistry`, as the real services resolve them to one catalogue entry: an item sent with
ANY id (kind and value) of an item already seen, or with the title + year of one, is that
item, and the ids it brings are remembered for the next lookup. Episodes are named by their
show's identity + season + number, or by their own ids.

A `Catalog` is what a fake knows before anyone scrobbles: the items its search and id
lookup endpoints answer about (seeded per fake, kind `catalog`).
"""

import re
import unicodedata
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


# --- catalogues: what a service knows before anyone scrobbles (search and id lookups) ----


def title_words(title: str) -> list[str]:
    """A title as search words: accents, case and punctuation dropped."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return re.sub(r"[^\w\s]+", " ", text.replace("&", " and ")).split()


@dataclass
class CatalogItem:
    """One item a service knows: a movie, show, episode or anime, with its ids.

    Episodes name their show by the show's first id (`show_key`, e.g. `trakt:1388`) with
    `season` and `number`. `titles` are other titles it is known by (English, romaji)."""

    type: str
    title: str
    year: int | None
    ids: dict[str, Any]
    titles: list[str] = field(default_factory=list)
    show_key: str | None = None
    season: int | None = None
    number: int | None = None

    def all_titles(self) -> list[str]:
        return [self.title, *self.titles]

    def summary(self) -> dict[str, Any]:
        """`{title, year, ids}` as both services write an item."""
        return {"title": self.title, "year": self.year, "ids": dict(self.ids)}


class Catalog:
    """A fake's catalogue: text search ranked like a search engine (an exact title first,
    then titles holding every word asked for), and lookups by any id."""

    def __init__(self, items: Iterable[CatalogItem] = ()) -> None:
        self.items: list[CatalogItem] = []
        for item in items:
            self.add(item)

    def add(self, item: CatalogItem) -> CatalogItem:
        self.items.append(item)
        return item

    def add_json(self, data: dict[str, Any]) -> CatalogItem:
        """Seed shape: {"type", "title", "year"?, "ids", "titles"?, for episodes "show"
        (the show's ids) + "season" + "number"}."""
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in ("movie", "show", "episode", "anime"):
            raise ValueError("a catalogue item's type is movie, show, episode or anime")
        ids = data.get("ids")
        if not isinstance(ids, dict) or not ids:
            raise ValueError("a catalogue item needs ids")
        show_key = None
        if kind == "episode":
            keys = id_keys({"ids": data.get("show")})
            if not keys or not is_int(data.get("season")) or not is_int(data.get("number")):
                raise ValueError("an episode needs its show's ids, a season and a number")
            show_key = keys[0]
        year = data.get("year")
        return self.add(
            CatalogItem(
                kind,
                str(data.get("title", "")),
                year if is_int(year) else None,
                dict(ids),
                [str(t) for t in data.get("titles", [])],
                show_key,
                data.get("season"),
                data.get("number"),
            )
        )

    def search(
        self, types: Iterable[str], query: str, years: tuple[int, int] | None = None
    ) -> list[tuple[float, CatalogItem]]:
        """Items of `types` whose title holds every word of `query`, best first, scored
        1000 for an exact title and less the more words the title has beyond the query."""
        wanted = title_words(query)
        kinds = set(types)
        if not wanted:
            return []
        found: list[tuple[float, CatalogItem]] = []
        for item in self.items:
            if item.type not in kinds:
                continue
            if years is not None and (item.year is None or not years[0] <= item.year <= years[1]):
                continue
            best = 0.0
            for title in item.all_titles():
                words = title_words(title)
                if words == wanted:
                    best = 1000.0
                elif all(w in words for w in wanted):
                    best = max(best, round(500.0 * len(wanted) / len(words), 3))
            if best:
                found.append((best, item))
        found.sort(key=lambda pair: -pair[0])
        return found

    def by_id(
        self, id_type: str, value: str, types: Iterable[str] | None = None
    ) -> list[CatalogItem]:
        wanted = str(value).strip().lower()
        kinds = set(types) if types is not None else None
        return [
            item
            for item in self.items
            if (kinds is None or item.type in kinds)
            and str(item.ids.get(id_type, "")).strip().lower() == wanted
            and wanted
        ]

    def show_of(self, episode: CatalogItem) -> CatalogItem | None:
        if episode.show_key is None:
            return None
        kind, _, value = episode.show_key.partition(":")
        shows = self.by_id(kind, value, ("show", "anime"))
        return shows[0] if shows else None

    def __len__(self) -> int:
        return len(self.items)
