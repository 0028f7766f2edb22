"""The Last.fm client: now playing, scrobbles (one, or a batch of up to 50 for a backlog) and
loves as signed form posts, and what Last.fm's answers mean for each piece of work.

Pure (see :mod:`scrobble_dispatcher.clients.base`): no network, no clock, no database.

- ``NOW_PLAYING`` -> ``track.updateNowPlaying``; ``SCROBBLE`` -> ``track.scrobble`` with the
  start of the play as ``timestamp``; ``RATING`` -> ``track.love``.
- Every parameter, ``method`` included, goes in a UTF-8 form body with ``format=json`` and an
  ``api_sig`` (:func:`sign`); ``sk`` is the user's session key.
- Last.fm puts errors in the body whatever the HTTP status: 11 and 16 are transient, 29 is
  its rate limit, 9 is a revoked session, the rest will not get better by sending again.
- A scrobble can be *ignored* (filtered, too old, in the future, over the daily limit); the
  answer says so per item, and an ignored item is a permanent outcome with a readable reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from scrobble_dispatcher.clients.base import (
    USER_AGENT,
    AppCredentials,
    HttpRequest,
    HttpResponse,
    Outcome,
    Unsendable,
    UserCredentials,
    retry_after_s,
)
from scrobble_shared.events import Content, ContentType
from scrobble_shared.lastfm_signature import sign as sign  # re-exported: tests use it
from scrobble_shared.service_names import ServiceName
from scrobble_shared.work import LOVE_FROM_RATING, WorkKind
from scrobble_shared.work_message import ScrobbleWork

MAX_BATCH: Final = 50
"""Most scrobbles Last.fm takes in one ``track.scrobble`` call."""

RATE_LIMIT_BACKOFF_S: Final = 10.0
"""How long to hold calls after error 29 when no Retry-After came (Last.fm sends none and no
limit headers; one put in by a proxy or a fake is honoured)."""

_TRANSIENT_ERRORS: Final = frozenset({11, 16})  # service offline, temporary error
_OPERATION_FAILED: Final = 8
_SESSION_REVOKED: Final = 9
_RATE_LIMITED: Final = 29

_IGNORED: Final[dict[int, str]] = {
    1: "artist filtered",
    2: "track filtered",
    3: "timestamp too old",
    4: "timestamp in the future",
    # The daily limit clears tomorrow, but EXTERNAL_APIS says an ignored item is permanent
    # and reported, not retried: by then most of the backlog is too old (code 3) anyway,
    # and history shows the reason so a person can replay it.
    5: "daily scrobble limit reached",
}


class UnsendableInBatch(Unsendable):
    """One work of a batch cannot be sent. The message is that work's readable reason;
    ``index`` says which one, so the caller can record it and build the rest again."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index


class LastfmClient:
    """Requests for Last.fm's write methods and the outcomes of their answers."""

    service: ServiceName = "lastfm"

    def __init__(self, api_url: str, app: AppCredentials) -> None:
        self.api_url = api_url
        self.app = app

    # --- requests ---------------------------------------------------------------------------
    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest:
        """The call for one piece of work; raises :class:`Unsendable` when there is none."""
        if work.kind is WorkKind.SCROBBLE:
            return self.build_batch([work], user)
        if work.kind is WorkKind.NOW_PLAYING:
            return self._request("track.updateNowPlaying", _track_fields(work.content), user)
        if work.kind is WorkKind.RATING:
            return self._request("track.love", _love_fields(work), user)
        raise Unsendable(f"Last.fm has no call for {work.kind.value} work")

    def build_batch(self, works: Sequence[ScrobbleWork], user: UserCredentials) -> HttpRequest:
        """One ``track.scrobble`` call for 1 to 50 scrobbles of one connection, in order.

        Raises ValueError for a batch the caller should never have made (empty, too big,
        not all scrobbles, several connections) and :class:`UnsendableInBatch` for a work
        that cannot be sent."""
        _check_batch(works)
        fields: dict[str, str] = {}
        for index, work in enumerate(works):
            try:
                item = _scrobble_fields(work)
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
    def classify(self, work: ScrobbleWork, response: HttpResponse) -> Outcome:
        """What the answer means for this work (a scrobble is read as a batch of one)."""
        if work.kind is WorkKind.SCROBBLE:
            return self.classify_batch([work], response)[0]
        failure = _failure(response)
        if failure is not None:
            return failure
        if work.kind is WorkKind.NOW_PLAYING:
            return _now_playing_outcome(response)
        return Outcome.done("loved", response.status)

    def classify_batch(
        self, works: Sequence[ScrobbleWork], response: HttpResponse
    ) -> list[Outcome]:
        """One outcome per work, in order: accepted or ignored item by item; an error for
        the whole call applies to every work."""
        failure = _failure(response)
        if failure is not None:
            return [failure] * len(works)
        scrobbles = response.json().get("scrobbles")
        items = _scrobble_items(scrobbles)
        if len(items) != len(works):
            mismatch = _count_mismatch(scrobbles, len(items), len(works), response.status)
            return [mismatch] * len(works)
        return [_item_outcome(item, response.status) for item in items]

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        """A pause after Last.fm's rate limit (error 29); else None. Last.fm sends no limit
        headers, so keeping under its per-key rate is the dispatcher's pacing."""
        if response.status == 429 or _error_code(response.json()) == _RATE_LIMITED:
            return _rate_limit_wait_s(response)
        return None


# --- building ---------------------------------------------------------------------------------
def _check_batch(works: Sequence[ScrobbleWork]) -> None:
    if not 1 <= len(works) <= MAX_BATCH:
        raise ValueError(f"a Last.fm batch holds 1 to {MAX_BATCH} scrobbles, not {len(works)}")
    kinds = {work.kind for work in works}
    if kinds != {WorkKind.SCROBBLE}:
        others = ", ".join(sorted(k.value for k in kinds - {WorkKind.SCROBBLE}))
        raise ValueError(f"a Last.fm batch holds only scrobbles, not {others}")
    if len({work.connection_id for work in works}) != 1:
        raise ValueError("a Last.fm batch is signed with one session key: one connection")


def _text(value: str | None) -> str | None:
    """The value when it has something to show, else None."""
    return value if value is not None and value.strip() else None


def _track_fields(content: Content) -> dict[str, str]:
    """Artist and track (required) and whatever else is known, under Last.fm's names."""
    if content.type is not ContentType.TRACK:
        raise Unsendable(f"Last.fm takes only tracks, not a {content.type.value}")
    artist = _text(content.artists[0]) if content.artists else None
    if artist is None:
        raise Unsendable("Last.fm needs an artist and the track has none")
    title = _text(content.title)
    if title is None:
        raise Unsendable("Last.fm needs a track title and the track has none")
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


def _scrobble_fields(work: ScrobbleWork) -> dict[str, str]:
    return {**_track_fields(work.content), "timestamp": _unix_seconds(work.occurred_at)}


def _love_fields(work: ScrobbleWork) -> dict[str, str]:
    if work.rating is not None and work.rating < LOVE_FROM_RATING:
        raise Unsendable(f"a rating of {work.rating:g} is not a love on Last.fm")
    fields = _track_fields(work.content)
    return {"artist": fields["artist"], "track": fields["track"]}


# --- reading answers ------------------------------------------------------------------------
def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _error_code(body: Any) -> int | None:
    return _as_int(body.get("error")) if isinstance(body, dict) else None


def _failure(response: HttpResponse) -> Outcome | None:
    """The outcome for the whole call when it failed, else None (read on)."""
    body = response.json()
    code = _error_code(body)
    if code is not None:
        message = str(body.get("message") or "no message")
        return _error_outcome(code, f"Last.fm error {code}: {message}", response)
    status = response.status
    if status == 429:
        return Outcome.slow_down(
            f"Last.fm answered HTTP {status}", status, _rate_limit_wait_s(response)
        )
    if status >= 500 or status == 408:
        return Outcome.retry(f"Last.fm answered HTTP {status} without an error code", status)
    if status >= 400:
        return Outcome.permanent(f"Last.fm answered HTTP {status} without an error code", status)
    if not isinstance(body, dict):
        return Outcome.retry(f"Last.fm answered HTTP {status} without a JSON object", status)
    return None


def _rate_limit_wait_s(response: HttpResponse) -> float:
    """Retry-After when Last.fm sends one it can be read from, else the fixed backoff."""
    after = retry_after_s(response)
    return RATE_LIMIT_BACKOFF_S if after is None else after


def _error_outcome(code: int, reason: str, response: HttpResponse) -> Outcome:
    status = response.status
    if code in _TRANSIENT_ERRORS:
        return Outcome.retry(reason, status)
    if code == _RATE_LIMITED:
        return Outcome.slow_down(reason, status, _rate_limit_wait_s(response))
    if code == _SESSION_REVOKED:
        return Outcome.reconnect(reason, status)
    if code == _OPERATION_FAILED and status >= 500:
        # 8 is Last.fm's catch-all ("something else went wrong"), so the code alone says
        # nothing; with a server-error status it is the backend failing: worth another try.
        return Outcome.retry(reason, status)
    return Outcome.permanent(reason, status)


def _ignored_code(item: Any) -> tuple[int, str]:
    """The item's ``ignoredMessage`` code (0 when accepted) and Last.fm's text for it."""
    message = item.get("ignoredMessage") if isinstance(item, dict) else None
    if not isinstance(message, dict):
        return 0, ""
    return _as_int(message.get("code")) or 0, str(message.get("#text") or "")


def _ignored_reason(code: int, text: str) -> str:
    meaning = _IGNORED.get(code) or text or "no reason given"
    return f"ignored by Last.fm (code {code}): {meaning}"


def _now_playing_outcome(response: HttpResponse) -> Outcome:
    code, text = _ignored_code(response.json().get("nowplaying"))
    if code:
        return Outcome.permanent(_ignored_reason(code, text), response.status)
    return Outcome.done("now playing updated", response.status)


def _scrobble_items(scrobbles: Any) -> list[Any]:
    """The per-item answers: one scrobble comes as an object, several as a list."""
    item = scrobbles.get("scrobble") if isinstance(scrobbles, dict) else None
    if item is None:
        return []
    return item if isinstance(item, list) else [item]


def _item_outcome(item: Any, status: int) -> Outcome:
    code, text = _ignored_code(item)
    if code:
        return Outcome.permanent(_ignored_reason(code, text), status)
    return Outcome.done("scrobbled", status)


def _count_mismatch(scrobbles: Any, got: int, sent: int, status: int) -> Outcome:
    """Items that cannot be matched to the works: trust the counts only when all went in."""
    attr = scrobbles.get("@attr") if isinstance(scrobbles, dict) else None
    if isinstance(attr, dict):
        accepted, ignored = _as_int(attr.get("accepted")), _as_int(attr.get("ignored"))
        if accepted == sent and ignored == 0:
            return Outcome.done("scrobbled", status)
    return Outcome.retry(f"Last.fm answered {got} items for {sent} scrobbles", status)
