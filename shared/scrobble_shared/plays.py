"""What one play is, and how each playback event moves it along. Pure: no I/O.

**One play** is what one user does with one content item in one player session: from its
first event until a ``stop``, or until the item falls silent for longer than the silence
timeout (30 minutes by default). The session is the event's ``session_id`` (no id: one
shared session per user and item). After a play has ended, the next ``start`` or
``resume`` is a new play; so is a ``progress`` whose position went back to the beginning
after the previous play counted (a player that loops a track and only sends progress).
A ``start`` inside a running play that has already counted, or whose position is clearly
behind what was played, also begins a new play: the user started the item over.
Anything else that arrives after a play ended (a duplicate ``stop``, a late ``pause``)
belongs to that ended play and changes nothing.

A play is *counted* (music: the listen rule of CONTRACTS section 2) at most once; that one
moment, whatever event shows it, is what becomes a scrobble. Video is judged per
connection against its own threshold, from the highest progress the play reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from scrobble_shared.events import Action, PlaybackEvent
from scrobble_shared.ids import as_uuid

# Music listen rule (CONTRACTS section 2, the Last.fm rule).
MIN_TRACK_MS: Final = 30_000
LISTEN_CAP_MS: Final = 240_000

# A start at or below this position (or percent) is "from the beginning".
BEGINNING_MS: Final = 15_000
BEGINNING_PERCENT: Final = 10.0

DEFAULT_SILENCE: Final = timedelta(minutes=30)

_PLAYING_ACTIONS: Final = frozenset({Action.START, Action.RESUME, Action.PROGRESS, Action.PAUSE})
_OPENING_ACTIONS: Final = frozenset({Action.START, Action.RESUME})


@dataclass(frozen=True)
class Play:
    """The state of one play, as the ``play_sessions`` table keeps it."""

    id: UUID
    user_id: UUID
    content_id: UUID
    session_id: str
    play_number: int
    started_at: datetime
    last_event_at: datetime
    last_action: Action
    start_position_ms: int
    last_position_ms: int
    max_position_ms: int
    max_progress: float
    duration_ms: int | None
    counted_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def played_ms(self) -> int:
        """How far the play got past where it began."""
        return max(0, self.max_position_ms - self.start_position_ms)


@dataclass(frozen=True)
class Step:
    """What one event did to the plays of its item."""

    play: Play
    # The play this event belongs to counted as a listen with this very event.
    counted_now: bool
    # The play ended with this event (a stop).
    finished_now: bool
    # The previous play, when this event ended it by starting a new one (its end is
    # "silence" or "started over", not a stop, so video there may still be due as watched).
    superseded: Play | None = None
    # The event arrived after its play had ended and changed nothing.
    late: bool = False


def listen_threshold_ms(duration_ms: int | None) -> int | None:
    """Played time after which a track counts; ``None`` when it can never count."""
    if duration_ms is None:
        return LISTEN_CAP_MS
    if duration_ms <= MIN_TRACK_MS:
        return None
    return min(duration_ms // 2, LISTEN_CAP_MS)


def _position(event: PlaybackEvent) -> int:
    return event.position_ms or 0


def _progress(event: PlaybackEvent) -> float:
    return event.progress_percent_effective() or 0.0


def _at_beginning(event: PlaybackEvent) -> bool:
    progress = event.progress_percent_effective()
    if progress is not None:
        return progress <= BEGINNING_PERCENT
    return _position(event) <= BEGINNING_MS


def _new_play(event: PlaybackEvent, play_id: UUID, number: int, superseded: Play | None) -> Step:
    """The event beginning a play (after ``superseded``, when it ended one by that)."""
    position = _position(event)
    started = event.occurred_at
    opening = event.action in _OPENING_ACTIONS
    if not opening and position:
        # We joined a play already under way (a player that only sends progress): it
        # started this long before.
        started = event.occurred_at - timedelta(milliseconds=position)
    start_position = position if opening else 0
    duration = event.content.duration_ms
    counted_now = _counts_now(
        None, duration, max(0, position - start_position), event.content.type == "track"
    )
    finished_now = event.action is Action.STOP
    play = Play(
        id=play_id,
        user_id=as_uuid(event.user_id),
        content_id=as_uuid(event.content.id),
        session_id=event.session_id or "",
        play_number=number,
        started_at=started,
        last_event_at=event.occurred_at,
        last_action=event.action,
        start_position_ms=start_position,
        last_position_ms=position,
        max_position_ms=position,
        max_progress=_progress(event),
        duration_ms=duration,
        counted_at=event.occurred_at if counted_now else None,
        finished_at=event.occurred_at if finished_now else None,
    )
    return Step(
        play=play, counted_now=counted_now, finished_now=finished_now, superseded=superseded
    )


def _begins_new_play(play: Play, event: PlaybackEvent, silence: timedelta) -> bool:
    if event.occurred_at - play.last_event_at > silence:
        return event.action is not Action.STOP or play.finished
    if play.finished:
        if event.action in _OPENING_ACTIONS:
            return True
        return event.action is Action.PROGRESS and _at_beginning(event)
    if event.action is Action.START:
        rewound = _position(event) + BEGINNING_MS < play.max_position_ms
        return (play.counted_at is not None and _at_beginning(event)) or rewound
    if event.action is Action.PROGRESS and play.counted_at is not None:
        return _at_beginning(event) and _position(event) + BEGINNING_MS < play.last_position_ms
    return False


def _counts_now(
    counted_at: datetime | None, duration_ms: int | None, played_ms: int, is_track: bool
) -> bool:
    if not is_track or counted_at is not None:
        return False
    needed = listen_threshold_ms(duration_ms)
    return needed is not None and played_ms >= needed


def advance(
    current: Play | None,
    event: PlaybackEvent,
    new_play_id: Callable[[], UUID],
    silence: timedelta = DEFAULT_SILENCE,
) -> Step:
    """Apply one play event (start, resume, pause, progress, stop) to the item's latest play.

    ``new_play_id`` is called only when the event begins a new play.
    """
    # Each play is built once, with everything this event changes (counted, finished):
    # dataclasses.replace, once up to three times an event, was a tenth of a batch.
    superseded: Play | None = None
    if current is not None and not _begins_new_play(current, event, silence):
        if current.finished:
            return Step(play=current, counted_now=False, finished_now=False, late=True)
        return _moved(current, event)
    if current is not None and not current.finished:
        superseded = replace(current, finished_at=current.last_event_at)
    number = 1 if current is None else current.play_number + 1
    return _new_play(event, new_play_id(), number, superseded)


def _moved(current: Play, event: PlaybackEvent) -> Step:
    """The event within its running play."""
    position = _position(event)
    max_position = max(current.max_position_ms, position)
    duration = current.duration_ms or event.content.duration_ms
    counted_now = _counts_now(
        current.counted_at,
        duration,
        max(0, max_position - current.start_position_ms),
        event.content.type == "track",
    )
    finished_now = event.action is Action.STOP
    play = Play(
        id=current.id,
        user_id=current.user_id,
        content_id=current.content_id,
        session_id=current.session_id,
        play_number=current.play_number,
        started_at=current.started_at,
        last_event_at=max(current.last_event_at, event.occurred_at),
        last_action=event.action,
        start_position_ms=current.start_position_ms,
        last_position_ms=position,
        max_position_ms=max_position,
        max_progress=max(current.max_progress, _progress(event)),
        duration_ms=duration,
        counted_at=event.occurred_at if counted_now else current.counted_at,
        finished_at=event.occurred_at if finished_now else current.finished_at,
    )
    return Step(play=play, counted_now=counted_now, finished_now=finished_now)


def is_play_action(action: Action) -> bool:
    return action in _PLAYING_ACTIONS or action is Action.STOP
