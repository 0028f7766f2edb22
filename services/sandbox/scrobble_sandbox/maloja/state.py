"""What the Maloja fake remembers: its API keys, its owner's name, and the scrobbles, one a
second (Maloja keys scrobbles by their time)."""

import re
from dataclasses import dataclass, field
from typing import Any, Final

from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.tokens import TokenStore
from scrobble_sandbox.credentials import SANDBOX_TOKEN, SANDBOX_USER

# Maloja's defaults (settings "invalid_artists", "delimiters_*"): artists it discards, and
# where it splits an artist string into artists.
INVALID_ARTISTS: Final = frozenset({"[Unknown Artist]", "Unknown Artist", "Spotify"})
_SPLIT: Final = re.compile(
    r"\s*[;/|]\s*|\s+(?:&|vs\.?|ft\.?|feat\.?|featuring)\s+", flags=re.IGNORECASE
)


def parse_artists(artist_string: str) -> list[str]:
    """The artists Maloja makes of one artist string: split at its delimiters (``;`` and
    ``/`` among them, never ``,``), the ones it discards left out, sorted."""
    names = {name.strip() for name in _SPLIT.split(artist_string)}
    return sorted(name for name in names if name and name not in INVALID_ARTISTS)


@dataclass
class Scrobble:
    time: int
    artists: list[str]
    title: str
    album: str | None = None
    length: int | None = None
    origin: str = "client:default"

    def same_track(self, other: "Scrobble") -> bool:
        return (self.artists, self.title) == (other.artists, other.title)

    def to_json(self) -> dict[str, Any]:
        """As ``/apis/mlj_1/scrobbles`` lists it."""
        album = None
        if self.album:
            album = {"artists": list(self.artists), "albumtitle": self.album}
        return {
            "time": self.time,
            "track": {
                "artists": list(self.artists),
                "title": self.title,
                "album": album,
                "length": self.length,
            },
            "duration": None,
            "origin": self.origin,
        }


@dataclass
class MalojaState:
    # API keys, each naming the client it was made for (Maloja's "default" at first start).
    keys: TokenStore = field(default_factory=TokenStore)
    # The server's NAME setting: validate-token's user_name.
    name: str = SANDBOX_USER
    scrobbles: dict[int, Scrobble] = field(default_factory=dict)
    # Maloja's "first scrobble" bound: without a ``from``, its lists start here. It is the
    # oldest scrobble the server held when it started (seeds count as held), else the
    # moment it started; a scrobble sent later for an earlier time does not move it.
    first_scrobble: int = field(default_factory=lambda: int(now()))
    # listen_type of each accepted submit-listens call, in order.
    submissions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys.add(SANDBOX_TOKEN, "default")

    def newest_first(self) -> list[Scrobble]:
        return sorted(self.scrobbles.values(), key=lambda s: s.time, reverse=True)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scrobbles": [s.to_json() for s in self.newest_first()],
            "first_scrobble": self.first_scrobble,
            "submissions": list(self.submissions),
        }
