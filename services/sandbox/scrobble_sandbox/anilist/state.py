"""What the AniList fake remembers: users, a small media catalog, list entries, tokens."""

from dataclasses import dataclass, field
from typing import Any

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.oauth import CodeGrant
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import SANDBOX_TOKEN, SANDBOX_USER

SANDBOX_USER_ID = 424242
TOKEN_TTL = 365 * 24 * 3600
STATUSES = ("CURRENT", "PLANNING", "COMPLETED", "DROPPED", "PAUSED", "REPEATING")


@dataclass
class AniListUser:
    id: int
    name: str
    score_format: str = "POINT_10"


@dataclass
class Media:
    id: int
    id_mal: int | None
    title: str
    episodes: int | None
    type: str = "ANIME"
    format: str = "TV"
    # startDate.year (and seasonYear, which the fake takes as the same year).
    year: int | None = None
    english: str | None = None

    def titles(self) -> list[str]:
        return [self.title] + ([self.english] if self.english else [])


@dataclass
class Entry:
    id: int
    user_id: int
    media_id: int
    status: str = "CURRENT"
    score_raw: int = 0
    progress: int = 0
    repeat: int = 0
    private: bool = False
    notes: str | None = None
    started_at: dict[str, int | None] = field(default_factory=dict)
    completed_at: dict[str, int | None] = field(default_factory=dict)
    created_at: int = field(default_factory=lambda: int(now()))
    updated_at: int = field(default_factory=lambda: int(now()))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userId": self.user_id,
            "mediaId": self.media_id,
            "status": self.status,
            "scoreRaw": self.score_raw,
            "progress": self.progress,
            "repeat": self.repeat,
            "private": self.private,
            "notes": self.notes,
            "startedAt": self.started_at,
            "completedAt": self.completed_at,
            "updatedAt": self.updated_at,
        }


def default_catalog() -> dict[int, Media]:
    media = [
        Media(1, 1, "Cowboy Bebop", 26, year=1998, english="Cowboy Bebop"),
        Media(20, 20, "NARUTO", 220, year=2002, english="Naruto"),
        Media(21, 21, "ONE PIECE", None, year=1999, english="ONE PIECE"),
        Media(16498, 16498, "Shingeki no Kyojin", 25, year=2013, english="Attack on Titan"),
        Media(
            154587,
            52991,
            "Sousou no Frieren",
            28,
            year=2023,
            english="Frieren: Beyond Journey's End",
        ),
        Media(30002, 2, "Berserk", None, type="MANGA", format="MANGA", year=1989),
    ]
    return {m.id: m for m in media}


@dataclass
class AniListState:
    tokens: TokenStore = field(default_factory=TokenStore)
    users: dict[int, AniListUser] = field(default_factory=dict)
    catalog: dict[int, Media] = field(default_factory=default_catalog)
    entries: dict[int, Entry] = field(default_factory=dict)
    codes: dict[str, CodeGrant] = field(default_factory=dict)
    saves: list[dict[str, Any]] = field(default_factory=list)
    next_entry_id: int = 1
    next_user_id: int = SANDBOX_USER_ID + 1

    def __post_init__(self) -> None:
        self.users[SANDBOX_USER_ID] = AniListUser(SANDBOX_USER_ID, SANDBOX_USER)
        self.tokens.add(SANDBOX_TOKEN, SANDBOX_USER)

    def user_named(self, name: str, create: bool = False) -> AniListUser | None:
        for user in self.users.values():
            if user.name.lower() == name.lower():
                return user
        if not create:
            return None
        user = AniListUser(self.next_user_id, name)
        self.next_user_id += 1
        self.users[user.id] = user
        return user

    def entry_for(self, user_id: int, media_id: int) -> Entry | None:
        for entry in self.entries.values():
            if entry.user_id == user_id and entry.media_id == media_id:
                return entry
        return None

    def new_entry(self, user_id: int, media_id: int) -> Entry:
        entry = Entry(self.next_entry_id, user_id, media_id)
        self.next_entry_id += 1
        self.entries[entry.id] = entry
        return entry

    def snapshot(self) -> dict[str, Any]:
        return {
            "entries": [e.to_json() for e in self.entries.values()],
            "saves": list(self.saves),
            "users": [{"id": u.id, "name": u.name} for u in self.users.values()],
            "catalog_size": len(self.catalog),
        }
