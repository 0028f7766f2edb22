"""What the ListenBrainz fake remembers: tokens, listens, playing-now and feedback."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import SANDBOX_TOKEN, SANDBOX_USER


@dataclass
class Listen:
    user: str
    listened_at: int
    track_metadata: dict[str, Any]
    listen_type: str
    inserted_at: float = field(default_factory=now)
    recording_msid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def dedup_key(self) -> tuple[str, int, str, str, str]:
        m = self.track_metadata
        return (
            self.user,
            self.listened_at,
            str(m.get("artist_name", "")),
            str(m.get("track_name", "")),
            str(m.get("release_name") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "listened_at": self.listened_at,
            "inserted_at": int(self.inserted_at),
            "recording_msid": self.recording_msid,
            "user_name": self.user,
            "track_metadata": self.track_metadata,
        }


@dataclass
class ListenBrainzState:
    tokens: TokenStore = field(default_factory=TokenStore)
    users: set[str] = field(default_factory=lambda: {SANDBOX_USER})
    listens: list[Listen] = field(default_factory=list)
    seen: set[tuple[str, int, str, str, str]] = field(default_factory=set)
    playing_now: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback: dict[tuple[str, str], int] = field(default_factory=dict)
    submissions: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokens.add(SANDBOX_TOKEN, SANDBOX_USER)

    def add_listen(self, listen: Listen) -> bool:
        """Store a listen unless the same one is already there (the server dedups too)."""
        key = listen.dedup_key()
        if key in self.seen:
            return False
        self.seen.add(key)
        self.listens.append(listen)
        return True

    def user_listens(self, user: str) -> list[Listen]:
        items = [x for x in self.listens if x.user == user]
        items.sort(key=lambda x: x.listened_at, reverse=True)
        return items

    def snapshot(self) -> dict[str, Any]:
        return {
            "listens": [x.to_json() | {"listen_type": x.listen_type} for x in self.listens],
            "playing_now": dict(self.playing_now),
            "feedback": [
                {"user": u, "recording": r, "score": s} for (u, r), s in self.feedback.items()
            ],
            "submissions": list(self.submissions),
            "users": sorted(self.users),
        }
