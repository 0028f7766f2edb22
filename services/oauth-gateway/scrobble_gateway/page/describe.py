"""What the page says about things, in words a person reads: trackers, statuses, items,
times, settings. Pure: plain values in, text out; the templates call these as filters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from scrobble_gateway.connect.providers import TITLES
from scrobble_shared.service_names import SERVICES

STATUS_LABELS: Final[dict[str, str]] = {
    "queued": "Queued",
    "sending": "Sending",
    "retrying": "Waiting to retry",
    "sent": "Delivered",
    "failed": "Not delivered",
    "dead": "Gave up",
}
KIND_LABELS: Final[dict[str, str]] = {
    "now_playing": "Now playing",
    "start": "Started",
    "pause": "Paused",
    "scrobble": "Scrobbled",
    "watched": "Marked watched",
    "rating": "Rated",
}
CONNECTION_STATES: Final[dict[str, str]] = {
    "active": "Active",
    "needs_reconnect": "Needs reconnecting",
    "disabled": "Disabled",
}
# What each tracker keeps, for the cards.
WHAT_IT_KEEPS: Final[dict[str, str]] = {
    "trakt": "films and TV episodes",
    "simkl": "films, TV and anime",
    "anilist": "anime episodes",
    "lastfm": "music",
    "listenbrainz": "music",
}
MUSIC: Final = frozenset({"lastfm", "listenbrainz"})
THRESHOLD_MEANING: Final = (
    "A film or episode counts as watched once you have played at least this share of it. "
    "Below it, the tracker keeps your position but never marks it watched."
)
MUSIC_THRESHOLD_MEANING: Final = (
    "Music follows Last.fm's rule instead of this number: a track counts once you have "
    "played half of it or 4 minutes, whichever comes first (tracks under 30 seconds never "
    "count)."
)


def service_title(service: str) -> str:
    return TITLES.get(service, service)


def services() -> tuple[str, ...]:
    return SERVICES


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def connection_state(row: Mapping[str, Any]) -> str:
    """active, needs_reconnect or disabled: a connection switched off is "disabled" whatever
    its token's state (it sends nothing either way)."""
    if not row["enabled"]:
        return "disabled"
    return str(row["status"])


def when(value: datetime | None) -> str:
    """A time as the page shows it before its script puts it in the reader's time zone."""
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def content_text(content: Mapping[str, Any]) -> str:
    """An item as a person names it: "Heat (1995)", "Severance S01E01 Good News About
    Hell", "Aphex Twin - Windowlicker"."""
    kind = content.get("type")
    title = _text(content.get("title"))
    show = content.get("show")
    show_title = _text(show.get("title")) if isinstance(show, Mapping) else None
    season, number = _number(content.get("season")), _number(content.get("number"))
    if kind == "track":
        artists = content.get("artists")
        names = [a for a in artists if isinstance(a, str)] if isinstance(artists, list) else []
        track = title or "Unknown track"
        return f"{', '.join(names)} - {track}" if names else track
    if kind in ("episode", "anime_episode"):
        where = ""
        if season is not None and number is not None:
            where = f"S{season:02d}E{number:02d}"
        elif number is not None:
            where = f"episode {number}"
        parts = [p for p in (show_title, where, title) if p]
        return " ".join(parts) if parts else "Unknown episode"
    year = _number(content.get("year"))
    if title and year:
        return f"{title} ({year})"
    return title or "Unknown item"


def item_text(request: Any) -> str:
    """The item of a scrobble, from its stored request (``content`` inside it)."""
    content = request.get("content") if isinstance(request, Mapping) else None
    return content_text(content) if isinstance(content, Mapping) else "Unknown item"
