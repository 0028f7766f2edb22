"""Building playback events for tests, with sensible defaults per content type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from scrobble_shared.events import PlaybackEvent

# Recent, not fixed: trackers refuse old plays (Last.fm ignores scrobbles older than 14
# days), so a fixed date would turn end-to-end tests red as the calendar moves on. Two days
# back, on the hour, leaves room for a day of events after it, all in the past.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
USER = "5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11"
MOVIE_ID = "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d01"
EPISODE_ID = "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d02"
ANIME_ID = "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d03"
TRACK_ID = "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d04"

CONTENT: dict[str, dict[str, Any]] = {
    "movie": {
        "type": "movie",
        "id": MOVIE_ID,
        "title": "Heat",
        "year": 1995,
        "duration_ms": 10_000_000,
        "external_ids": {"imdb": "tt0113277", "tmdb": 949},
    },
    "episode": {
        "type": "episode",
        "id": EPISODE_ID,
        "title": "Pilot",
        "duration_ms": 3_000_000,
        "season": 1,
        "number": 1,
        "show": {"title": "Severance", "year": 2022, "external_ids": {"tvdb": 371980}},
    },
    "anime_episode": {
        "type": "anime_episode",
        "id": ANIME_ID,
        "title": "The Journey's End",
        "duration_ms": 1_440_000,
        "number": 1,
        "show": {"title": "Frieren", "external_ids": {"mal": 52991}},
    },
    "track": {
        "type": "track",
        "id": TRACK_ID,
        "title": "Windowlicker",
        "duration_ms": 367_000,
        "artists": ["Aphex Twin"],
        "album": "Windowlicker",
        "external_ids": {"musicbrainz_recording": "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"},
    },
}


def event(
    action: str,
    position_ms: int | None = None,
    *,
    content_type: str = "movie",
    at_s: float = 0,
    session: str | None = "s-1",
    user: str = USER,
    content: dict[str, Any] | None = None,
    **extra: Any,
) -> PlaybackEvent:
    """An event ``at_s`` seconds after T0; ``content`` overrides the default item's fields
    (a ``None`` there drops the field)."""
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "user_id": user,
        "action": action,
        "occurred_at": (T0 + timedelta(seconds=at_s)).isoformat(),
        "content": {
            key: value
            for key, value in {**CONTENT[content_type], **(content or {})}.items()
            if value is not None
        },
        **extra,
    }
    if session is not None:
        body["session_id"] = session
    if position_ms is not None:
        body["position_ms"] = position_ms
    return PlaybackEvent.model_validate(body)
