"""The items the translate tests' payloads describe, as every server's translation has them.

A test adds what its server gives besides, and the item's id (each server names it its own
way): ``{**items.HEAT, "id": ..., "external_ids": ...}``.
"""

from __future__ import annotations

from typing import Any

HEAT: dict[str, Any] = {"type": "movie", "title": "Heat", "duration_ms": 10_200_000, "year": 1995}
GOOD_NEWS_ABOUT_HELL: dict[str, Any] = {
    "type": "episode",
    "title": "Good News About Hell",
    "duration_ms": 3_420_000,
    "season": 1,
    "number": 1,
}
WINDOWLICKER: dict[str, Any] = {
    "type": "track",
    "title": "Windowlicker",
    "duration_ms": 367_000,
    "artists": ["Aphex Twin"],
    "album": "Windowlicker",
}
