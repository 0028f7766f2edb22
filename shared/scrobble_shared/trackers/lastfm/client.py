"""The Last.fm client: now playing, scrobbles (one, or a batch of up to 50 for a backlog) and
loves as signed form posts, and what Last.fm's answers mean for each piece of work.

Pure (see :mod:`scrobble_shared.trackers.http`): no network, no clock, no database.

- ``NOW_PLAYING`` -> ``track.updateNowPlaying``; ``SCROBBLE`` -> ``track.scrobble`` with the
  start of the play as ``timestamp``; ``RATING`` -> ``track.love``.
- Every parameter, ``method`` included, goes in a UTF-8 form body with ``format=json`` and an
  ``api_sig`` (:func:`sign`); ``sk`` is the user's session key.
- Last.fm puts errors in the body whatever the HTTP status: 11 and 16 are transient, 29 is
  its rate limit, 9 is a revoked session, the rest will not get better by sending again.
- A scrobble can be *ignored* (filtered, too old, in the future, over the daily limit); the
  answer says so per item, and an ignored item is a permanent outcome with a readable reason.
  What the codes mean is the tracker's (:class:`IgnoredCodes`): Libre.fm numbers them
  otherwise and has one for an item it already holds, which is done, not lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from scrobble_shared.events import Content, ContentType
from scrobble_shared.service_names import ServiceName
from scrobble_shared.trackers.http import (
    USER_AGENT,
    AppCredentials,
    Conversation,
    HttpRequest,
    HttpResponse,
    Outcome,
    Unsendable,
    UserCredentials,
    one_call,
)
from scrobble_shared.trackers.lastfm.errors import (
    as_int,
    error_code,
    error_outcome,
    is_rate_limit,
    rate_limit_wait_s,
)
from scrobble_shared.trackers.lastfm.signature import sign as sign  # re-exported: tests use it
from scrobble_shared.work import LOVE_FROM_RATING, WorkKind
from scrobble_shared.work_message import ScrobbleWork

MAX_BATCH: Final = 50
"""Most scrobbles Last.fm takes in one ``track.scrobble`` call."""


@dataclass(frozen=True)
class IgnoredCodes:
    """What a tracker's ``ignoredMessage`` codes mean: a readable reason for each, and the
    codes that say the tracker already holds the item (a scrobble sent again after an
    answer that never came), which is done rather than lost."""

    reasons: Mapping[int, str]
    already_held: frozenset[int] = field(default_factory=frozenset)

    def outcome(self, code: int, text: str, label: str, status: int) -> Outcome:
        """The outcome of an item ignored with ``code`` (and the tracker's ``text``)."""
        meaning = self.reasons.get(code) or text or "no reason given"
        if code in self.already_held:
            return Outcome.already_done(f"already on {label} (code {code}): {meaning}", status)
        return Outcome.permanent(f"ignored by {label} (code {code}): {meaning}", status)


LASTFM_IGNORED: Final = IgnoredCodes(
    {
        1: "artist filtered",
        2: "track filtered",
        3: "timestamp too old",
        4: "timestamp in the future",
        # The daily limit clears tomorrow, but EXTERNAL_APIS says an ignored item is
        # permanent and reported, not retried: by then most of the backlog is too old
        # (code 3) anyway, and history shows the reason so a person can replay it.
        5: "daily scrobble limit reached",
    }
)


class UnsendableInBatch(Unsendable):
    """One work of a batch cannot be sent. The message is that work's readable reason;
    ``index`` says which one, so the caller can record it and build the rest again."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index


class LastfmClient:
    """Requests for the Last.fm 2.0 protocol's write methods and the outcomes of their
    answers: Last.fm's, or another tracker's that speaks the same protocol (Libre.fm),
    named by ``service`` and ``label``, whose ignored codes are ``ignored``."""

    def __init__(
        self,
        api_url: str,
        app: AppCredentials,
        *,
        service: ServiceName = "lastfm",
        label: str = "Last.fm",
        ignored: IgnoredCodes = LASTFM_IGNORED,
    ) -> None:
        self.api_url = api_url
        self.app = app
        self.service = service
        self.label = label
        self.ignored = ignored

    # --- requests ---------------------------------------------------------------------------
    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest:
        """The call for one piece of work; raises :class:`Unsendable` when there is none."""
        if work.kind is WorkKind.SCROBBLE:
            return self.build_batch([work], user)
        if work.kind is WorkKind.NOW_PLAYING:
            fields = _track_fields(work.content, self.label)
            return self._request("track.updateNowPlaying", fields, user)
        if work.kind is WorkKind.RATING:
            return self._request("track.love", _love_fields(work, self.label), user)
        raise Unsendable(f"{self.label} has no call for {work.kind.value} work")

    def build_batch(self, works: Sequence[ScrobbleWork], user: UserCredentials) -> HttpRequest:
        """One ``track.scrobble`` call for 1 to 50 scrobbles of one connection, in order.

        Raises ValueError for a batch the caller should never have made (empty, too big,
        not all scrobbles, several connections) and :class:`UnsendableInBatch` for a work
        that cannot be sent."""
        _check_batch(works, self.label)
        fields: dict[str, str] = {}
        for index, work in enumerate(works):
            try:
                item = _scrobble_fields(work, self.label)
            except Unsendable as error:
                raise UnsendableInBatch(index, str(error)) from None
            fields.update({f"{name}[{index}]": value for name, value in item.items()})
        return self._request("track.scrobble", fields, user)

    def _request(
        self, method: str, fields: Mapping[str, str], user: UserCredentials
    ) -> HttpRequest:
        params = {"method": method, "api_key": self.app.client_id, "sk": user.token, **fields}
        form = {**params, "api_sig": sign(params, self.app.client_secret), "format": "json"}
        return HttpRequest("POST", self.api_url, headers={"User-Agent": USER_AGENT}, form=form)

    # --- outcomes ---------------------------------------------------------------------------
    def steps(self, work: ScrobbleWork, user: UserCredentials) -> Conversation:
        return one_call(self, work, user)

    def classify(self, work: ScrobbleWork, response: HttpResponse) -> Outcome:
        """What the answer means for this work (a scrobble is read as a batch of one)."""
        if work.kind is WorkKind.SCROBBLE:
            return self.classify_batch([work], response)[0]
        failure = _failure(response, self.label)
        if failure is not None:
            return failure
        if work.kind is WorkKind.NOW_PLAYING:
            return _now_playing_outcome(response, self.label, self.ignored)
        return Outcome.done("loved", response.status)

    def classify_batch(
        self, works: Sequence[ScrobbleWork], response: HttpResponse
    ) -> list[Outcome]:
        """One outcome per work, in order: accepted or ignored item by item; an error for
        the whole call applies to every work."""
        failure = _failure(response, self.label)
        if failure is not None:
            return [failure] * len(works)
        scrobbles = response.json().get("scrobbles")
        items = _scrobble_items(scrobbles)
        if len(items) != len(works):
            got, sent = len(items), len(works)
            mismatch = _count_mismatch(scrobbles, got, sent, response.status, self.label)
            return [mismatch] * len(works)
        status = response.status
        return [_item_outcome(item, status, self.label, self.ignored) for item in items]

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        """A pause after the rate limit (error 29); else None. Last.fm sends no limit
        headers, so keeping under its per-key rate is the dispatcher's pacing."""
        code = error_code(response.json())
        if response.status == 429 or (code is not None and is_rate_limit(code)):
            return rate_limit_wait_s(response)
        return None


# --- building ---------------------------------------------------------------------------------
def _check_batch(works: Sequence[ScrobbleWork], label: str) -> None:
    if not 1 <= len(works) <= MAX_BATCH:
        raise ValueError(f"a {label} batch holds 1 to {MAX_BATCH} scrobbles, not {len(works)}")
    kinds = {work.kind for work in works}
    if kinds != {WorkKind.SCROBBLE}:
        others = ", ".join(sorted(k.value for k in kinds - {WorkKind.SCROBBLE}))
        raise ValueError(f"a {label} batch holds only scrobbles, not {others}")
    if len({work.connection_id for work in works}) != 1:
        raise ValueError(f"a {label} batch is signed with one session key: one connection")


def _text(value: str | None) -> str | None:
    """The value when it has something to show, else None."""
    return value if value is not None and value.strip() else None


def _track_fields(content: Content, label: str) -> dict[str, str]:
    """Artist and track (required) and whatever else is known, under the protocol's names."""
    if content.type is not ContentType.TRACK:
        raise Unsendable(f"{label} takes only tracks, not a {content.type.value}")
    artist = _text(content.artists[0]) if content.artists else None
    if artist is None:
        raise Unsendable(f"{label} needs an artist and the track has none")
    title = _text(content.title)
    if title is None:
        raise Unsendable(f"{label} needs a track title and the track has none")
    fields = {"artist": artist, "track": title}
    optional = {
        "album": _text(content.album),
        "albumArtist": _text(content.album_artist),
        "trackNumber": _positive(content.track_number),
        "duration": _duration_s(content.duration_ms),
        "mbid": content.external_ids.musicbrainz_recording if content.external_ids else None,
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    return fields


def _positive(number: int | None) -> str | None:
    return str(number) if number is not None and number > 0 else None


def _duration_s(duration_ms: int | None) -> str | None:
    return None if duration_ms is None else _positive(round(duration_ms / 1000))


def _unix_seconds(moment: datetime) -> str:
    # A naive time is taken as UTC: the ingest service writes offsets, so none is expected.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return str(int(aware.timestamp()))


def _scrobble_fields(work: ScrobbleWork, label: str) -> dict[str, str]:
    return {**_track_fields(work.content, label), "timestamp": _unix_seconds(work.occurred_at)}


def _love_fields(work: ScrobbleWork, label: str) -> dict[str, str]:
    if work.rating is not None and work.rating < LOVE_FROM_RATING:
        raise Unsendable(f"a rating of {work.rating:g} is not a love on {label}")
    fields = _track_fields(work.content, label)
    return {"artist": fields["artist"], "track": fields["track"]}


# --- reading answers ------------------------------------------------------------------------
def _failure(response: HttpResponse, label: str) -> Outcome | None:
    """The outcome for the whole call when it failed, else None (read on)."""
    body = response.json()
    code = error_code(body)
    if code is not None:
        return error_outcome(code, label, body, response)
    status = response.status
    if status == 429:
        return Outcome.slow_down(
            f"{label} answered HTTP {status}", status, rate_limit_wait_s(response)
        )
    if status >= 500 or status == 408:
        return Outcome.retry(f"{label} answered HTTP {status} without an error code", status)
    if status >= 400:
        return Outcome.permanent(f"{label} answered HTTP {status} without an error code", status)
    if not isinstance(body, dict):
        return Outcome.retry(f"{label} answered HTTP {status} without a JSON object", status)
    return None


def _ignored_code(item: Any) -> tuple[int, str]:
    """The item's ``ignoredMessage`` code (0 when accepted) and Last.fm's text for it."""
    message = item.get("ignoredMessage") if isinstance(item, dict) else None
    if not isinstance(message, dict):
        return 0, ""
    return as_int(message.get("code")) or 0, str(message.get("#text") or "")


def _now_playing_outcome(response: HttpResponse, label: str, ignored: IgnoredCodes) -> Outcome:
    code, text = _ignored_code(response.json().get("nowplaying"))
    if code:
        return ignored.outcome(code, text, label, response.status)
    return Outcome.done("now playing updated", response.status)


def _scrobble_items(scrobbles: Any) -> list[Any]:
    """The per-item answers: one scrobble comes as an object, several as a list."""
    item = scrobbles.get("scrobble") if isinstance(scrobbles, dict) else None
    if item is None:
        return []
    return item if isinstance(item, list) else [item]


def _item_outcome(item: Any, status: int, label: str, ignored: IgnoredCodes) -> Outcome:
    code, text = _ignored_code(item)
    if code:
        return ignored.outcome(code, text, label, status)
    return Outcome.done("scrobbled", status)


def _count_mismatch(scrobbles: Any, got: int, sent: int, status: int, label: str) -> Outcome:
    """Items that cannot be matched to the works: trust the counts only when all went in."""
    attr = scrobbles.get("@attr") if isinstance(scrobbles, dict) else None
    if isinstance(attr, dict):
        accepted, ignored = as_int(attr.get("accepted")), as_int(attr.get("ignored"))
        if accepted == sent and ignored == 0:
            return Outcome.done("scrobbled", status)
    return Outcome.retry(f"{label} answered {got} items for {sent} scrobbles", status)
