"""What the Simkl fake remembers: tokens, grants, watch events, ratings, activities."""

from dataclasses import dataclass, field
from typing import Any, Literal

from scrobble_sandbox.core.clock import iso_utc, now
from scrobble_sandbox.core.device import DeviceGrant
from scrobble_sandbox.core.items import Catalog, CatalogItem
from scrobble_sandbox.core.ledger import ScrobbleLedger
from scrobble_sandbox.core.oauth import CodeGrant
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import SANDBOX_TOKEN, SANDBOX_USER

PIN_TTL = 900
Kind = Literal["movie", "show", "anime"]
# Activities groups, as Simkl names them.
GROUPS: dict[str, str] = {"movie": "movies", "show": "tv_shows", "anime": "anime"}


@dataclass
class WatchEvent:
    """One watched movie or episode; shows and anime group episodes by `key`."""

    id: int
    user: str
    kind: Kind
    key: str
    item: dict[str, Any]
    watched_at: float
    season: int | None = None
    number: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "user": self.user,
            "type": self.kind,
            self.kind: self.item,
            "watched_at": iso_utc(self.watched_at),
        }
        if self.number is not None:
            out["episode"] = {"season": self.season, "number": self.number}
        return out


@dataclass
class SimklRating:
    user: str
    kind: Kind
    key: str
    item: dict[str, Any]
    rating: int
    rated_at: float


def default_catalog() -> Catalog:
    """A few real titles as Simkl lists them (Simkl ids illustrative), including an anime
    known by its English title too."""
    return Catalog(
        [
            CatalogItem(
                "movie",
                "Heat",
                1995,
                {"simkl": 53452, "slug": "heat", "imdb": "tt0113277", "traktslug": "heat-1995"},
            ),
            CatalogItem(
                "movie", "Heat", 1986, {"simkl": 94011, "slug": "heat", "imdb": "tt0093164"}
            ),
            CatalogItem(
                "movie",
                "Inception",
                2010,
                {"simkl": 53536, "slug": "inception", "imdb": "tt1375666", "tmdb": 27205},
            ),
            CatalogItem(
                "show",
                "Breaking Bad",
                2008,
                {
                    "simkl": 11121,
                    "slug": "breaking-bad",
                    "tvdb": 81189,
                    "imdb": "tt0903747",
                    "traktslug": "breaking-bad",
                },
            ),
            CatalogItem(
                "show",
                "Severance",
                2022,
                {"simkl": 1283914, "slug": "severance", "tvdb": 371980, "imdb": "tt11280740"},
            ),
            CatalogItem(
                "anime",
                "Cowboy Bebop",
                1998,
                {"simkl": 37089, "slug": "cowboy-bebop", "mal": 1, "anilist": 1},
            ),
            CatalogItem(
                "anime",
                "Sousou no Frieren",
                2023,
                {"simkl": 2185386, "slug": "sousou-no-frieren", "mal": 52991, "anilist": 154587},
                titles=["Frieren: Beyond Journey's End"],
            ),
        ]
    )


@dataclass
class SimklState(ScrobbleLedger):
    tokens: TokenStore = field(default_factory=TokenStore)
    codes: dict[str, CodeGrant] = field(default_factory=dict)
    pins: dict[str, DeviceGrant] = field(default_factory=dict)
    history: list[WatchEvent] = field(default_factory=list)
    ratings: dict[tuple[str, str], SimklRating] = field(default_factory=dict)
    # What search and id lookups answer about (seed kind "catalog").
    catalog: Catalog = field(default_factory=default_catalog)
    # (user, activities group, field) -> when it last changed.
    activity: dict[tuple[str, str, str], float] = field(default_factory=dict)
    full_syncs: int = 0
    pin_interval: int = 5
    created_at: float = field(default_factory=now)
    next_id: int = 1

    def __post_init__(self) -> None:
        self.tokens.add(SANDBOX_TOKEN, SANDBOX_USER)

    def touch(self, user: str, kind: Kind, what: str, at: float | None = None) -> None:
        self.activity[(user, GROUPS[kind], what)] = now() if at is None else at

    def add_watch(
        self,
        user: str,
        kind: Kind,
        key: str,
        item: dict[str, Any],
        watched_at: float,
        season: int | None = None,
        number: int | None = None,
    ) -> WatchEvent:
        event = WatchEvent(self.next_id, user, kind, key, item, watched_at, season, number)
        self.next_id += 1
        self.history.append(event)
        self.touch(user, kind, "completed" if kind == "movie" else "watching")
        return event

    def snapshot(self) -> dict[str, Any]:
        return {
            "history": [e.to_json() for e in self.history],
            "ratings": [
                {
                    "user": r.user,
                    "type": r.kind,
                    r.kind: r.item,
                    "rating": r.rating,
                    "rated_at": iso_utc(r.rated_at),
                }
                for r in self.ratings.values()
            ],
            "scrobbles": list(self.scrobbles),
            "playback": self.playback_json(),
            "full_syncs": self.full_syncs,
            "catalog_size": len(self.catalog),
            "live_tokens": self.tokens.count_live(),
        }
