"""What a playback event means for each connection: the table of CONTRACTS section 2.

Pure: the caller hands in the event, the play step from :mod:`scrobble_shared.plays` and
the user's connections, and gets back the scrobble work to queue. Each piece of work has a
``dedupe_key`` that names the play (or event) and what happens to it; the database keeps
one row per connection and key, which is what makes one play = one scrobble hold under
redelivery and duplicate events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from scrobble_shared.events import Action, Content, ContentType, PlaybackEvent
from scrobble_shared.plays import Play, Step
from scrobble_shared.service_names import ServiceName

# Trakt and Simkl mark a stopped play watched only from 80 % (EXTERNAL_APIS).
SERVICE_WATCHED_AT_STOP: Final = 80.0
# Last.fm and ListenBrainz have no scale: a rating this high is a "love".
LOVE_FROM_RATING: Final = 8.0


class WorkKind(StrEnum):
    """What the dispatcher is asked to do (the ``scrobbles.kind`` column)."""

    NOW_PLAYING = "now_playing"  # Last.fm updateNowPlaying, ListenBrainz playing_now
    START = "start"  # Trakt/Simkl scrobble/start
    PAUSE = "pause"  # Trakt/Simkl scrobble/pause
    SCROBBLE = "scrobble"  # Trakt/Simkl scrobble/stop as watched; a counted music listen
    WATCHED = "watched"  # history add (Trakt/Simkl /sync/history, AniList progress)
    RATING = "rating"  # /sync/ratings, AniList score, Last.fm love, ListenBrainz feedback


class PlayStyle(StrEnum):
    """How a tracker follows a play (each tracker declares its own, in its folder)."""

    # Scrobble start, pause and stop as the play goes; watched at stop past the threshold,
    # or through the history endpoint (Trakt, Simkl).
    LIVE = "live"
    # Only a watched mark once a play stops past the threshold (AniList's progress).
    WATCHED = "watched"
    # Now playing at start, and one listen once the play counts (Last.fm, ListenBrainz).
    LISTEN = "listen"


@dataclass(frozen=True)
class PlayRules:
    """What a tracker takes and how it follows plays: the part of a tracker these rules
    need, declared in the tracker's folder (``scrobble_shared.trackers``)."""

    takes: frozenset[ContentType]
    style: PlayStyle
    # A rating goes only with a MusicBrainz recording id (ListenBrainz feedback).
    rating_needs_recording_mbid: bool = False
    # Now playing at the start of a listen: False where the tracker keeps none (Maloja
    # takes the call and drops it), so no call is spent on it.
    now_playing: bool = True
    # Ratings at all (a love, for music): False where the tracker keeps none (Maloja).
    ratings: bool = True

    @property
    def music(self) -> bool:
        return self.style is PlayStyle.LISTEN


@dataclass(frozen=True)
class ConnectionRules:
    """The parts of a connection that decide what its plays turn into, with its tracker's
    rules (``play``)."""

    id: UUID
    service: ServiceName
    play: PlayRules
    enabled: bool = True
    scrobble_threshold_percent: int = 80
    sync_watch_status: bool = False
    sync_ratings: bool = False


@dataclass(frozen=True)
class Work:
    """One call to make at one service for one connection."""

    connection_id: UUID
    service: ServiceName
    kind: WorkKind
    dedupe_key: str
    # When it happened at the user's end: the play's start for a listen, the moment of
    # watching for history, the event's time otherwise.
    occurred_at: datetime
    progress_percent: float | None = None
    rating: float | None = None
    play_id: UUID | None = None


def takes(rules: ConnectionRules, content: Content) -> bool:
    """Whether the connection's tracker can take this kind of item at all. Whether it can
    name this very item is the dispatcher's resolution to find out (AniList by its id, a
    MyAnimeList id, or the show's title and year); an item it cannot name becomes a failure
    with its reason in history, never silently nothing."""
    return content.type in rules.play.takes


def _watched(play: Play, rules: ConnectionRules) -> bool:
    return play.max_progress >= rules.scrobble_threshold_percent


def _watched_work(rules: ConnectionRules, play: Play, at: datetime, kind: WorkKind) -> Work:
    return Work(
        connection_id=rules.id,
        service=rules.service,
        kind=kind,
        dedupe_key=f"play:{play.id}:watched",
        occurred_at=at,
        progress_percent=play.max_progress,
        play_id=play.id,
    )


def _event_work(
    rules: ConnectionRules, event: PlaybackEvent, kind: WorkKind, **extra: float | None
) -> Work:
    return Work(
        connection_id=rules.id,
        service=rules.service,
        kind=kind,
        dedupe_key=f"event:{event.event_id}:{kind.value}",
        occurred_at=event.occurred_at,
        progress_percent=extra.get("progress_percent"),
        rating=extra.get("rating"),
    )


def finished_play_work(rules: ConnectionRules, play: Play) -> list[Work]:
    """A video play that ended without a stop (silence, or started over): watched if it
    crossed the connection's threshold, through the history endpoint."""
    if not rules.enabled or rules.play.music or not _watched(play, rules):
        return []
    return [_watched_work(rules, play, play.last_event_at, WorkKind.WATCHED)]


def _video_play_work(rules: ConnectionRules, event: PlaybackEvent, step: Step) -> list[Work]:
    play, progress = step.play, event.progress_percent_effective() or 0.0
    if event.action in (Action.START, Action.RESUME):
        return [_event_work(rules, event, WorkKind.START, progress_percent=progress)]
    if event.action is Action.PAUSE:
        return [_event_work(rules, event, WorkKind.PAUSE, progress_percent=progress)]
    if event.action is not Action.STOP:
        return []
    if not _watched(play, rules):
        # Below the connection's threshold: keep the position, never mark it watched.
        return [_event_work(rules, event, WorkKind.PAUSE, progress_percent=progress)]
    if progress >= SERVICE_WATCHED_AT_STOP:
        work = _watched_work(rules, play, event.occurred_at, WorkKind.SCROBBLE)
        return [Work(**{**work.__dict__, "progress_percent": progress})]
    # Watched by the connection's rule but below the service's own: a stop would be kept
    # as a pause there, so the play goes in through the history endpoint instead.
    return [_watched_work(rules, play, event.occurred_at, WorkKind.WATCHED)]


def _music_play_work(rules: ConnectionRules, event: PlaybackEvent, step: Step) -> list[Work]:
    found: list[Work] = []
    if event.action in (Action.START, Action.RESUME) and rules.play.now_playing:
        found.append(_event_work(rules, event, WorkKind.NOW_PLAYING))
    if step.counted_now:
        found.append(
            Work(
                connection_id=rules.id,
                service=rules.service,
                kind=WorkKind.SCROBBLE,
                dedupe_key=f"play:{step.play.id}:listen",
                occurred_at=step.play.started_at,
                play_id=step.play.id,
            )
        )
    return found


def play_work(rules: ConnectionRules, event: PlaybackEvent, step: Step) -> list[Work]:
    """Work for one connection from a play event (start, resume, pause, progress, stop)."""
    if not rules.enabled or not takes(rules, event.content) or step.late:
        return []
    found = [] if step.superseded is None else finished_play_work(rules, step.superseded)
    style = rules.play.style
    if style is PlayStyle.LIVE:
        found += _video_play_work(rules, event, step)
    elif style is PlayStyle.WATCHED:
        if event.action is Action.STOP and _watched(step.play, rules):
            found.append(_watched_work(rules, step.play, event.occurred_at, WorkKind.WATCHED))
    else:
        found += _music_play_work(rules, event, step)
    return found


def rating_work(rules: ConnectionRules, event: PlaybackEvent) -> list[Work]:
    """Work for one connection from a ``rate`` event, when it syncs ratings."""
    rating = event.rating
    if not (rules.enabled and rules.sync_ratings and rules.play.ratings and rating is not None):
        return []
    if not takes(rules, event.content):
        return []
    if rules.play.rating_needs_recording_mbid:
        ids = event.content.external_ids
        if ids is None or ids.musicbrainz_recording is None:
            return []  # feedback needs a recording MBID
    if rules.play.music and rating < LOVE_FROM_RATING:
        return []
    return [_event_work(rules, event, WorkKind.RATING, rating=rating)]


def mark_watched_work(rules: ConnectionRules, event: PlaybackEvent) -> list[Work]:
    """Work for one connection from a manual ``mark_watched``, when it syncs watch status."""
    if not (rules.enabled and rules.sync_watch_status) or rules.play.music:
        return []
    if not takes(rules, event.content):
        return []
    watched_at = event.watched_at or event.occurred_at
    return [
        Work(
            connection_id=rules.id,
            service=rules.service,
            kind=WorkKind.WATCHED,
            # The same item marked at the same moment is one history entry, whatever
            # event ids carried it: Trakt does not deduplicate history adds.
            dedupe_key=f"mark:{event.content.id}:{watched_at.isoformat()}",
            occurred_at=watched_at,
        )
    ]
