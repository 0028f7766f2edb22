"""How Trakt and Simkl style bodies name a movie, show or episode, reduced to a stable key.

A key is the first id present in a fixed order (or title + year), so the same item sent with
the same ids twice maps to the same key; the fakes use it to spot a repeat scrobble.
"""

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
