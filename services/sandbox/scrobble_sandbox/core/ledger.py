"""What a Trakt-style scrobble API remembers, beside each service's own history and ratings:
the scrobble log, paused playbacks, the duplicate windows, ids seeded as unknown, and the
item registry. Trakt and Simkl keep exactly these, so their states both start from here."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from scrobble_sandbox.core.items import ItemRegistry, id_keys

# How long a finished scrobble blocks a repeat of the same item (409).
DUPLICATE_WINDOW = 3600.0


@dataclass
class ScrobbleLedger(ABC):
    scrobbles: list[dict[str, Any]] = field(default_factory=list)
    # (user, item key) -> (watched_at, expires_at) of the last finished scrobble.
    recent: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    # (user, item key) -> progress of a scrobble started or paused but not finished.
    playback: dict[tuple[str, str], float] = field(default_factory=dict)
    unknown_ids: set[str] = field(default_factory=set)
    # Every item seen, so that one item sent with other ids is one item.
    items: ItemRegistry = field(default_factory=ItemRegistry)
    duplicate_window: float = DUPLICATE_WINDOW

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """What the fake holds, JSON-shaped, for tests to assert on."""

    def add_unknown_ids(self, items: list[dict[str, Any]]) -> int:
        """Seed ids (e.g. {"imdb": "tt0000000"}) whose items answer "not found"."""
        for ids in items:
            self.unknown_ids.update(id_keys({"ids": ids}))
        return len(items)

    def playback_json(self) -> list[dict[str, Any]]:
        return [{"user": u, "item": k, "progress": p} for (u, k), p in self.playback.items()]
