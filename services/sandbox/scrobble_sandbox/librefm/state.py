"""What the Libre.fm fake remembers beyond the Last.fm fake: the tracks it knows (GNU FM's
``Track`` table), which a love needs."""

from dataclasses import dataclass, field

from scrobble_sandbox.lastfm.state import LastfmState


@dataclass
class LibrefmState(LastfmState):
    # (artist, title) in lower case, as GNU FM looks tracks up; scrobbles and now playing
    # add them.
    tracks: set[tuple[str, str]] = field(default_factory=set)

    def know(self, artist: str, track: str) -> None:
        self.tracks.add((artist.strip().lower(), track.strip().lower()))

    def knows(self, artist: str, track: str) -> bool:
        key = (artist.strip().lower(), track.strip().lower())
        return key in self.tracks or any(
            (s.artist.strip().lower(), s.track.strip().lower()) == key for s in self.scrobbles
        )
