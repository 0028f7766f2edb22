"""The load, decided without I/O: who the users are, what each play sends and in what
order, and what each fake must hold afterwards because of it.

Every play is of an item no other play uses (a movie with its own IMDb id, an episode
number of the user's own show, a track with its own title), so each fake record names
exactly one play: a record found twice is a double, a record not found is lost.

A play is what a media server sends about one viewing or listening: a start, progress, a
stop. Some plays also carry the mess the real world adds (``Quirk``): the same webhook sent
twice, a late event after the stop, two events swapped, a clock ten minutes off. The
events are dated backwards from the moment the play is made, the stop last, so a play is
always in the past unless its server's clock runs ahead.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

# The fakes' own duplicate rules: ListenBrainz stores a listen once, AniList keeps one
# progress per show; only these services can show a double.
KEEPS_DUPLICATES: Final = frozenset({"trakt", "simkl", "lastfm"})
NAMESPACE: Final = uuid.UUID("c4a05000-0000-4000-8000-000000000019")


class Profile(StrEnum):
    VIEWER = "viewer"  # movies and episodes: Trakt, some Simkl too
    ANIME = "anime"  # anime episodes: AniList, some Simkl too
    LISTENER = "listener"  # tracks: ListenBrainz, some Last.fm too


class Outcome(StrEnum):
    RECORDED = "recorded"  # the fake holds it exactly once
    ABSENT = "absent"  # the fake must not hold it (not watched far enough, a poison's)
    DEAD = "dead"  # refused for good: dead-lettered with a reason, not at the fake


class Quirk(StrEnum):
    DUPLICATE = "duplicate"  # one event sent twice (a webhook resent)
    LATE = "late"  # a pause dated before the stop, sent after it
    SWAPPED = "swapped"  # two events of the play arrive in the wrong order
    POISON = "poison"  # the service refuses the item for good
    SKEW_AHEAD = "skew_ahead"  # the media server's clock is 10 minutes fast
    SKEW_BEHIND = "skew_behind"  # ... or 10 minutes slow


@dataclass(frozen=True)
class User:
    index: int
    id: uuid.UUID
    profile: Profile
    services: tuple[str, ...]
    name: str  # the account name at every fake

    def token(self, service: str) -> str:
        """The user's own token at a service (UUID-shaped, as ListenBrainz's are)."""
        return str(uuid.uuid5(NAMESPACE, f"{self.name}:{service}"))

    @property
    def show_tvdb(self) -> int:
        return 7_000_000 + self.index

    @property
    def anime_mal(self) -> int:
        return 800_000 + self.index

    @property
    def anime_anilist(self) -> int:
        return 900_000 + self.index


@dataclass(frozen=True)
class Expect:
    """What one fake must hold about one play afterwards."""

    service: str
    user: str  # the fake's user name
    mark: str  # how the record is recognised: see ``marks.py``
    outcome: Outcome


@dataclass
class Send:
    """One event as the media server sends it, ``after_s`` after the previous one."""

    body: dict[str, Any]
    after_s: float = 0.3
    via: str = "events"  # events | jellyfin
    # Accepted (2xx) by the intake at last: only then does it count.
    accepted: bool = False


@dataclass
class Play:
    number: int
    user: User
    content: dict[str, Any]
    sends: list[Send]
    expects: list[Expect]
    quirks: tuple[Quirk, ...] = ()
    scenario: str = ""
    # Set when the intake never took one of its events before the deadline.
    refused: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --- users -------------------------------------------------------------------------------


def services_for(profile: Profile, rng: random.Random, extra_share: float) -> tuple[str, ...]:
    """A user's connections: one main service, and with ``extra_share`` a second one."""
    main, extra = {
        Profile.VIEWER: ("trakt", "simkl"),
        Profile.ANIME: ("anilist", "simkl"),
        Profile.LISTENER: ("listenbrainz", "lastfm"),
    }[profile]
    return (main, extra) if rng.random() < extra_share else (main,)


def make_users(
    count: int, tag: str, rng: random.Random, first_index: int = 0, extra_share: float = 0.25
) -> list[User]:
    """``count`` users: a third of each profile."""
    profiles = [Profile.VIEWER, Profile.LISTENER, Profile.ANIME]
    users = []
    for n in range(count):
        index = first_index + n
        profile = profiles[n % len(profiles)]
        users.append(
            User(
                index=index,
                id=uuid.uuid5(NAMESPACE, f"{tag}:user:{index}"),
                profile=profile,
                services=services_for(profile, rng, extra_share),
                name=f"{tag}-u{index}",
            )
        )
    return users


def viewers(
    count: int, tag: str, first_index: int, role: str, services: tuple[str, ...]
) -> list[User]:
    """``count`` viewers with a ``role`` of their own (browser, importer): ids and names of
    their own (the role's first letter in the name), with ``services`` connected."""
    return [
        User(
            index=first_index + n,
            id=uuid.uuid5(NAMESPACE, f"{tag}:{role}:{n}"),
            profile=Profile.VIEWER,
            services=services,
            name=f"{tag}-{role[0]}{n}",
        )
        for n in range(count)
    ]


# --- items -------------------------------------------------------------------------------


def content_id(tag: str, number: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{tag}:item:{number}"))


def movie(tag: str, number: int) -> dict[str, Any]:
    return {
        "type": "movie",
        "id": content_id(tag, number),
        "title": f"Chaos Film {tag} {number}",
        "year": 1990 + number % 30,
        "duration_ms": 6_000_000,
        "external_ids": {"imdb": f"tt{90_000_000 + number}", "tmdb": 90_000_000 + number},
    }


def episode(tag: str, number: int, user: User, episode_number: int) -> dict[str, Any]:
    return {
        "type": "episode",
        "id": content_id(tag, number),
        "title": f"Chaos Episode {episode_number}",
        "duration_ms": 2_400_000,
        "season": 1,
        "number": episode_number,
        "show": {
            "title": f"Chaos Show {tag} {user.index}",
            "year": 2020,
            "external_ids": {"tvdb": user.show_tvdb},
        },
    }


def anime(tag: str, number: int, user: User, episode_number: int) -> dict[str, Any]:
    return {
        "type": "anime_episode",
        "id": content_id(tag, number),
        "title": f"Chaos Anime Episode {episode_number}",
        "duration_ms": 1_440_000,
        "number": episode_number,
        "show": {
            "title": f"Chaos Anime {tag} {user.index}",
            "external_ids": {"mal": user.anime_mal},
        },
    }


def track(tag: str, number: int, artist: str = "Chaos Ensemble") -> dict[str, Any]:
    return {
        "type": "track",
        "id": content_id(tag, number),
        "title": f"Chaos Track {tag} {number}",
        "duration_ms": 200_000,
        "artists": [artist],
        "album": "Faults",
    }


# Items a service refuses for good: an IMDb id Trakt is seeded not to know, an artist
# Last.fm filters (ignored code 1).
POISON_IMDB_BASE: Final = 80_000_000
POISON_POOL: Final = 50  # that many such ids, seeded at the start
FILTERED_ARTIST: Final = "[unknown]"


def poison_movie(tag: str, number: int) -> dict[str, Any]:
    item = movie(tag, number)
    item["external_ids"] = {"imdb": f"tt{POISON_IMDB_BASE + number % POISON_POOL}"}
    item["title"] = f"Chaos Unknown Film {tag} {number}"
    return item


# --- marks: how each fake's record of a play is recognised ------------------------------


def marks(content: dict[str, Any], service: str) -> str:
    """The key ``ledger.py`` reads from the fakes' records for this item (the same at
    every service; ``service`` is kept for a service that would name it differently)."""
    kind = content["type"]
    if kind == "movie":
        return f"imdb:{content['external_ids']['imdb']}"
    if kind == "episode":
        return f"tvdb:{content['show']['external_ids']['tvdb']}:1:{content['number']}"
    if kind == "anime_episode":
        return f"mal:{content['show']['external_ids']['mal']}:{content['number']}"
    return f"track:{content['title']}"


# --- plays -------------------------------------------------------------------------------


def _event(
    user: User, action: str, at: datetime, content: dict[str, Any], position_ms: int, session: str
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": str(user.id),
        "session_id": session,
        "action": action,
        "occurred_at": at.isoformat(),
        "position_ms": position_ms,
        "content": content,
    }


def play_events(
    user: User, content: dict[str, Any], share: float, now: datetime, session: str
) -> list[dict[str, Any]]:
    """Start, progress at half of ``share``, stop at ``share`` of the item, the stop dated
    ``now``."""
    duration = int(content["duration_ms"])
    stop_ms = int(duration * share)
    half_ms = stop_ms // 2
    start = now - timedelta(milliseconds=stop_ms)
    return [
        _event(user, "start", start, content, 0, session),
        _event(
            user, "progress", start + timedelta(milliseconds=half_ms), content, half_ms, session
        ),
        _event(user, "stop", now, content, stop_ms, session),
    ]


def expectations(user: User, content: dict[str, Any], watched: bool, poison: bool) -> list[Expect]:
    found = []
    for service in user.services:
        if poison:
            refuses = (content["type"] == "movie" and service == "trakt") or (
                FILTERED_ARTIST in content.get("artists", []) and service == "lastfm"
            )
            outcome = Outcome.DEAD if refuses else Outcome.RECORDED
        else:
            outcome = Outcome.RECORDED if watched else Outcome.ABSENT
        found.append(Expect(service, user.name, marks(content, service), outcome))
    return found


@dataclass
class PlayMaker:
    """Makes plays for users, numbering items and episodes; all randomness from ``rng``."""

    tag: str
    rng: random.Random
    next_number: int = 0
    episodes: dict[int, int] = field(default_factory=dict)
    quirk_share: float = 0.25
    poison_share: float = 0.02
    unwatched_share: float = 0.1

    def item_for(self, user: User, poison: bool) -> dict[str, Any]:
        self.next_number += 1
        number = self.next_number
        if user.profile is Profile.LISTENER:
            return track(self.tag, number, FILTERED_ARTIST if poison else "Chaos Ensemble")
        if user.profile is Profile.ANIME:
            self.episodes[user.index] = self.episodes.get(user.index, 0) + 1
            return anime(self.tag, number, user, self.episodes[user.index])
        if poison and "trakt" in user.services:
            return poison_movie(self.tag, number)
        if self.rng.random() < 0.5:
            return movie(self.tag, number)
        self.episodes[user.index] = self.episodes.get(user.index, 0) + 1
        return episode(self.tag, number, user, self.episodes[user.index])

    def make(
        self, user: User, now: datetime, skew: timedelta | None = None, plain: bool = False
    ) -> Play:
        """A play of ``user``; ``plain``: watched to the end, no quirk (the canary)."""
        rng = self.rng
        poison = (
            not plain and user.profile is not Profile.ANIME and rng.random() < self.poison_share
        )
        if poison and user.profile is Profile.LISTENER and "lastfm" not in user.services:
            poison = False
        content = self.item_for(user, poison)
        # Anime never goes unwatched: AniList keeps a show's progress, not each episode.
        unwatched = (
            not (poison or plain)
            and user.profile is not Profile.ANIME
            and rng.random() < self.unwatched_share
        )
        share = rng.uniform(0.1, 0.3) if unwatched else rng.uniform(0.9, 0.98)
        quirks: list[Quirk] = [Quirk.POISON] if poison else []
        when = now if skew is None else now + skew
        if skew is not None:
            quirks.append(Quirk.SKEW_AHEAD if skew > timedelta(0) else Quirk.SKEW_BEHIND)
        session = f"{self.tag}-s{self.next_number}"
        events = play_events(user, content, share, when, session)
        sends = [Send(e, after_s=rng.uniform(0.1, 0.6)) for e in events]
        if not plain and rng.random() < self.quirk_share:
            quirk = rng.choice([Quirk.DUPLICATE, Quirk.LATE, Quirk.SWAPPED])
            quirks.append(quirk)
            apply_quirk(quirk, sends, user, content, rng)
        if user.profile is Profile.VIEWER and content["type"] == "movie" and rng.random() < 0.3:
            for send in sends:
                send.via = "jellyfin"
        return Play(
            number=self.next_number,
            user=user,
            content=content,
            sends=sends,
            expects=expectations(user, content, not unwatched, poison),
            quirks=tuple(quirks),
        )


def apply_quirk(
    quirk: Quirk, sends: list[Send], user: User, content: dict[str, Any], rng: random.Random
) -> None:
    if quirk is Quirk.DUPLICATE:
        again = rng.choice(sends)
        sends.append(Send(dict(again.body), after_s=rng.uniform(0.2, 3.0)))
    elif quirk is Quirk.LATE:
        stop = sends[-1].body
        progress = sends[1].body
        late = _event(
            user,
            "pause",
            datetime.fromisoformat(progress["occurred_at"]) + timedelta(seconds=1),
            content,
            int(progress["position_ms"]),
            str(stop["session_id"]),
        )
        sends.append(Send(late, after_s=rng.uniform(1.0, 4.0)))
    elif quirk is Quirk.SWAPPED:
        # The progress before the start, or the stop before the progress.
        first = rng.choice((0, 1))
        sends[first], sends[first + 1] = sends[first + 1], sends[first]


def now_utc() -> datetime:
    return datetime.now(UTC)
