"""What the Last.fm fake remembers: auth tokens, session keys, users, scrobbles, loves."""

from dataclasses import asdict, dataclass, field
from typing import Any

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import SANDBOX_TOKEN, SANDBOX_USER

TOKEN_TTL = 3600
MAX_AGE = 14 * 24 * 3600


@dataclass
class AuthToken:
    created: float
    user: str | None = None
    used: bool = False


@dataclass
class Scrobble:
    user: str
    artist: str
    track: str
    timestamp: int
    album: str = ""
    album_artist: str = ""
    mbid: str = ""
    duration: str = ""
    track_number: str = ""
    chosen_by_user: str = ""
    received_at: float = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LastfmState:
    sessions: TokenStore = field(default_factory=TokenStore)
    tokens: dict[str, AuthToken] = field(default_factory=dict)
    users: set[str] = field(default_factory=lambda: {SANDBOX_USER})
    scrobbles: list[Scrobble] = field(default_factory=list)
    now_playing: dict[str, dict[str, Any]] = field(default_factory=dict)
    loves: dict[tuple[str, str, str], float] = field(default_factory=dict)
    # Names Last.fm's filters drop (ignored code 1 / 2), compared case-insensitively.
    filtered_artists: set[str] = field(default_factory=lambda: {"[unknown]", "unknown artist"})
    filtered_tracks: set[str] = field(default_factory=lambda: {"[unknown]", "unknown track"})
    daily_limit: int = 2800
    max_age: int = MAX_AGE
    # How far ahead of our clock a timestamp may be before it is "too new" (code 4).
    future_tolerance: int = 300

    def __post_init__(self) -> None:
        self.sessions.add(SANDBOX_TOKEN, SANDBOX_USER)

    def user_scrobbles(self, user: str) -> list[Scrobble]:
        items = [s for s in self.scrobbles if s.user == user]
        items.sort(key=lambda s: s.timestamp, reverse=True)
        return items

    def snapshot(self) -> dict[str, Any]:
        return {
            "scrobbles": [s.to_json() for s in self.scrobbles],
            "now_playing": dict(self.now_playing),
            "loves": [
                {"user": u, "artist": a, "track": t, "at": at}
                for (u, a, t), at in self.loves.items()
            ],
            "users": sorted(self.users),
            "live_sessions": self.sessions.count_live(),
        }
