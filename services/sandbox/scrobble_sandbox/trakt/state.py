"""What the Trakt fake remembers: users' tokens, grants, history, ratings and scrobbles."""

from dataclasses import dataclass, field
from typing import Any, Literal

from scrobble_sandbox.core.clock import iso_utc, now
from scrobble_sandbox.core.device import DeviceGrant
from scrobble_sandbox.core.items import Catalog, CatalogItem
from scrobble_sandbox.core.ledger import ScrobbleLedger
from scrobble_sandbox.core.oauth import CodeGrant
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import SANDBOX_TOKEN, SANDBOX_USER

ACCESS_TTL = 7 * 24 * 3600
DEVICE_TTL = 600


@dataclass
class HistoryItem:
    id: int
    user: str
    type: Literal["movie", "episode"]
    watched_at: float
    action: str
    movie: dict[str, Any] | None = None
    show: dict[str, Any] | None = None
    episode: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "watched_at": iso_utc(self.watched_at),
            "action": self.action,
            "type": self.type,
        }
        if self.type == "movie":
            out["movie"] = self.movie
        else:
            out["episode"] = self.episode
            if self.show is not None:
                out["show"] = self.show
        return out


@dataclass
class Rating:
    user: str
    type: str
    key: str
    rating: int
    rated_at: float
    item: dict[str, Any]
    # The show a season or episode was rated under (shows[].seasons[].episodes[]).
    show: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "rated_at": iso_utc(self.rated_at),
            "rating": self.rating,
            "type": self.type,
            self.type: self.item,
        }
        if self.show is not None:
            out["show"] = self.show
        return out


def default_catalog() -> Catalog:
    """A few real titles with their ids (as Trakt lists them; the Trakt ids of the
    episodes are illustrative), including two movies named "Heat" a decade apart."""
    bb, sev = {"trakt": 1388}, {"trakt": 154997}
    return Catalog(
        [
            CatalogItem(
                "movie",
                "Heat",
                1995,
                {"trakt": 1074, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949},
            ),
            CatalogItem(
                "movie",
                "Heat",
                1986,
                {"trakt": 10239, "slug": "heat-1986", "imdb": "tt0093164", "tmdb": 31052},
            ),
            CatalogItem(
                "movie",
                "Inception",
                2010,
                {"trakt": 16662, "slug": "inception-2010", "imdb": "tt1375666", "tmdb": 27205},
            ),
            CatalogItem(
                "movie",
                "The Matrix",
                1999,
                {"trakt": 481, "slug": "the-matrix-1999", "imdb": "tt0133093", "tmdb": 603},
            ),
            CatalogItem(
                "movie",
                "Amélie",
                2001,
                {"trakt": 112, "slug": "amelie-2001", "imdb": "tt0211915", "tmdb": 194},
            ),
            CatalogItem(
                "show",
                "Breaking Bad",
                2008,
                bb | {"slug": "breaking-bad", "tvdb": 81189, "imdb": "tt0903747", "tmdb": 1396},
            ),
            CatalogItem(
                "show",
                "Severance",
                2022,
                sev | {"slug": "severance", "tvdb": 371980, "imdb": "tt11280740", "tmdb": 95396},
            ),
            CatalogItem(
                "episode",
                "Pilot",
                2008,
                {"trakt": 73482, "tvdb": 349232, "imdb": "tt0959621", "tmdb": 62085},
                show_key="trakt:1388",
                season=1,
                number=1,
            ),
            CatalogItem(
                "episode",
                "Good News About Hell",
                2022,
                {"trakt": 5346017, "tvdb": 8436781, "imdb": "tt11650328", "tmdb": 1979036},
                show_key="trakt:154997",
                season=1,
                number=1,
            ),
        ]
    )


@dataclass
class TraktState(ScrobbleLedger):
    access: TokenStore = field(default_factory=TokenStore)
    # refresh token -> (access token, user); dropped once used: refresh tokens are single-use.
    refresh: dict[str, tuple[str, str]] = field(default_factory=dict)
    codes: dict[str, CodeGrant] = field(default_factory=dict)
    devices: dict[str, DeviceGrant] = field(default_factory=dict)
    history: list[HistoryItem] = field(default_factory=list)
    ratings: dict[tuple[str, str], Rating] = field(default_factory=dict)
    # What search and id lookups answer about (seed kind "catalog").
    catalog: Catalog = field(default_factory=default_catalog)
    max_page_limit: int = 100
    device_interval: int = 5
    next_id: int = 1

    def __post_init__(self) -> None:
        self.access.add(SANDBOX_TOKEN, SANDBOX_USER)

    def new_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def add_history(
        self,
        user: str,
        kind: Literal["movie", "episode"],
        watched_at: float,
        action: str,
        *,
        movie: dict[str, Any] | None = None,
        show: dict[str, Any] | None = None,
        episode: dict[str, Any] | None = None,
    ) -> HistoryItem:
        item = HistoryItem(self.new_id(), user, kind, watched_at, action, movie, show, episode)
        self.history.append(item)
        return item

    def user_history(self, user: str, kind: str | None) -> list[HistoryItem]:
        items = [h for h in self.history if h.user == user and (kind is None or h.type == kind)]
        items.sort(key=lambda h: (h.watched_at, h.id), reverse=True)
        return items

    def snapshot(self) -> dict[str, Any]:
        return {
            "history": [dict(h.to_json(), user=h.user) for h in self.history],
            "ratings": [dict(r.to_json(), user=r.user) for r in self.ratings.values()],
            "scrobbles": list(self.scrobbles),
            "playback": self.playback_json(),
            "live_tokens": self.access.count_live(),
            "catalog_size": len(self.catalog),
            "devices": [
                {"user_code": d.user_code, "status": d.status, "user": d.user}
                for d in self.devices.values()
            ],
            "at": now(),
        }
