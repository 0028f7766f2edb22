"""ListenBrainz: listens (``playing_now``, ``single``, ``import``) and recording feedback.

Pure, like every client here: work in, :class:`HttpRequest` out; response in,
:class:`Outcome` out. The rules a listen must pass are the server's own
(``api_tools.validate_listen``, docs/EXTERNAL_APIS.md):

- ``track_metadata.artist_name`` and ``track_name`` are required and non-empty; an item
  without them is :class:`Unsendable`. ``artist_name`` is every artist of the track joined
  with ``", "`` (what the Jellyfin and Navidrome plugins send): the full credit is what
  ListenBrainz's MBID mapper matches best, and ``artist_mbids`` carries each artist.
- ``additional_info`` gets ``duration_ms`` only when the length is known and within the
  server's 24 days (never ``duration`` too), the MusicBrainz ids, ``tracknumber``, ``isrc``
  and ``submission_client``/``submission_client_version`` from :data:`USER_AGENT`.
- No string may hold NUL: they are stripped (a name that is nothing but NUL is missing).
- ``listened_at`` is the start of the play in Unix seconds; ``playing_now`` has none.
- Bodies stay under 10,240 bytes per listen on average (and 10,240,000 in all), measured
  on the widest usual encoding (ASCII escapes, spaced separators).

Backlogs go in one ``import`` call of 1 to 1000 listens (:meth:`ListenBrainzClient.
build_batch`); :meth:`~ListenBrainzClient.classify` reads the answer to either kind of call
the same way, so the outcome of an import applies to each of its works.

Other servers take listens in this protocol (Maloja): the client is then named by their
``service`` and ``label``, finds the API on the connection's own server
(:class:`UserCredentials` ``api_url`` plus ``api_path``), and shapes what the server reads
its own way (:class:`ListenShape`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from scrobble_shared.events import Content
from scrobble_shared.service_names import ServiceName
from scrobble_shared.trackers.http import (
    USER_AGENT,
    Conversation,
    HttpRequest,
    HttpResponse,
    Outcome,
    Unsendable,
    UserCredentials,
    one_call,
    retry_after_s,
    seconds_header,
)
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

# "revenge-scrobble/0.1 (+https://...)": one place names the client and its version.
SUBMISSION_CLIENT, _, SUBMISSION_CLIENT_VERSION = USER_AGENT.split(" ", 1)[0].partition("/")

MAX_LISTENS_PER_IMPORT: Final = 1000
# Listens per import from a backlog: far under its 1,000, so the claims of one call stay
# short-lived and one bad answer touches few rows.
IMPORT_BATCH: Final = 100
MAX_BODY_BYTES: Final = 10_240_000
MAX_BYTES_PER_LISTEN: Final = 10_240
MAX_DURATION_MS: Final = 24 * 24 * 3600 * 1000
# The server refuses listens before 2002-10-01 (the ListenBrainz epoch).
MIN_LISTENED_AT: Final = 1_033_430_400

_LISTEN_PATH: Final = "/submit-listens"
_FEEDBACK_PATH: Final = "/feedback/recording-feedback"
_RETRY_STATUSES: Final = frozenset({408, 503})
_MESSAGE_BUDGET: Final = 500


@dataclass(frozen=True)
class ListenShape:
    """How a server taking ListenBrainz listens reads what the protocol leaves open."""

    # Between the artists of a track in ``artist_name``.
    artist_separator: str = ", "
    # The length as ``duration`` in whole seconds rather than ``duration_ms`` (the protocol
    # takes either, never both; Maloja reads only ``duration``).
    duration_in_seconds: bool = False


LISTENBRAINZ_SHAPE: Final = ListenShape()


class ListenBrainzClient:
    """The pure ListenBrainz client; ``api_url`` is the API base ending in ``/1``, or, with
    ``api_path``, the server whose API is at that path (a connection's own server, when it
    names one, takes its place). Another tracker taking listens this way is named by its
    ``service`` and ``label``."""

    def __init__(
        self,
        api_url: str,
        *,
        service: ServiceName = "listenbrainz",
        label: str = "ListenBrainz",
        api_path: str = "",
        shape: ListenShape = LISTENBRAINZ_SHAPE,
    ) -> None:
        base = api_url.rstrip("/")
        if not (base + api_path).endswith("/1"):
            raise ValueError(f"the {label} API URL must end in /1, not {api_url!r}")
        self.api_url = base
        self.service = service
        self.label = label
        self.api_path = api_path
        self.shape = shape

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest:
        """playing_now for NOW_PLAYING, single for SCROBBLE, a love for RATING."""
        if work.kind is WorkKind.NOW_PLAYING:
            body = _submission("playing_now", [self._listen(work, timestamped=False)])
        elif work.kind is WorkKind.SCROBBLE:
            body = _submission("single", [self._listen(work, timestamped=True)])
        elif work.kind is WorkKind.RATING:
            return self._post(_FEEDBACK_PATH, _love(work.content, self.label), user)
        else:
            raise Unsendable(f"{self.label} takes no {work.kind.value} work")
        try:
            _check_size(body, 1, self.label)
        except ValueError as exc:
            raise Unsendable(str(exc)) from None
        return self._post(_LISTEN_PATH, body, user)

    def build_batch(self, works: Sequence[ScrobbleWork], user: UserCredentials) -> HttpRequest:
        """One ``import`` call for 1 to 1000 SCROBBLE works of one connection.

        ValueError when the batch is not that or its body would break the server's size
        limits; Unsendable (from the work that has no listen) when a work cannot be sent at
        all: check works with :meth:`build` before batching them.
        """
        _check_batch(works)
        body = _submission("import", [self._listen(work, timestamped=True) for work in works])
        _check_size(body, len(works), self.label)
        return self._post(_LISTEN_PATH, body, user)

    def classify(self, work: ScrobbleWork, response: HttpResponse) -> Outcome:
        """What an answer to build or build_batch means (for each work of an import)."""
        status, label = response.status, self.label
        if 200 <= status < 300:
            return _classify_success(response)
        if status == 401:
            reason = _server_message(response) or f"the {label} token was refused"
            return Outcome.reconnect(reason, status)
        if status == 429:
            reason = _server_message(response) or f"{label} answered HTTP {status}"
            return Outcome.slow_down(reason, status, _retry_after_s(response))
        if status in _RETRY_STATUSES or status >= 500:
            reason = _server_message(response) or f"{label} answered HTTP {status}"
            return Outcome.retry(reason, status, _retry_after_s(response))
        return Outcome.permanent(_server_message(response) or f"HTTP {status}", status)

    def classify_batch(
        self, works: Sequence[ScrobbleWork], response: HttpResponse
    ) -> list[Outcome]:
        """An import's answer is every one of its works' answer."""
        return [self.classify(work, response) for work in works]

    def steps(self, work: ScrobbleWork, user: UserCredentials) -> Conversation:
        return one_call(self, work, user)

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        """X-RateLimit-Reset-In when X-RateLimit-Remaining says no call is left; after a
        429 what it says to wait (Retry-After, else X-RateLimit-Reset-In) in any case."""
        if response.status == 429:
            return _retry_after_s(response)
        remaining = seconds_header(response, "X-RateLimit-Remaining")
        if remaining is None or remaining > 0:
            return None
        return seconds_header(response, "X-RateLimit-Reset-In")

    def _listen(self, work: ScrobbleWork, *, timestamped: bool) -> dict[str, Any]:
        return listen_of(work, timestamped=timestamped, shape=self.shape, label=self.label)

    def api_base(self, user: UserCredentials) -> str:
        """Where this user's calls go: the connection's own server, when it names one, else
        the configured one; then ``api_path``."""
        return (user.api_url or self.api_url).rstrip("/") + self.api_path

    def _post(self, path: str, body: Any, user: UserCredentials) -> HttpRequest:
        headers = {
            "Authorization": f"Token {user.token}",
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        return HttpRequest("POST", self.api_base(user) + path, headers=headers, json=body)


# --- listens -----------------------------------------------------------------------------


def listen_of(
    work: ScrobbleWork,
    *,
    timestamped: bool,
    shape: ListenShape = LISTENBRAINZ_SHAPE,
    label: str = "ListenBrainz",
) -> dict[str, Any]:
    """The listen for one work: ``track_metadata`` and, when timestamped, ``listened_at``."""
    listen: dict[str, Any] = {}
    if timestamped:
        listen["listened_at"] = _listened_at(work.occurred_at, label)
    listen["track_metadata"] = track_metadata(work.content, shape, label)
    return listen


def track_metadata(
    content: Content, shape: ListenShape = LISTENBRAINZ_SHAPE, label: str = "ListenBrainz"
) -> dict[str, Any]:
    """``track_metadata`` as the server validates it; Unsendable without artist or title."""
    names = (name for name in map(_clean, content.artists or []) if name.strip())
    artist = shape.artist_separator.join(names)
    title = _clean(content.title)
    if not artist.strip():
        raise Unsendable(f"{label} needs an artist name")
    if not title.strip():
        raise Unsendable(f"{label} needs a track title")
    metadata: dict[str, Any] = {"artist_name": artist, "track_name": title}
    album = _clean(content.album or "")
    if album.strip():
        metadata["release_name"] = album
    metadata["additional_info"] = additional_info(content, shape)
    return metadata


def additional_info(content: Content, shape: ListenShape = LISTENBRAINZ_SHAPE) -> dict[str, Any]:
    """What is known beyond the names; always at least the submission client."""
    info: dict[str, Any] = {}
    if content.duration_ms is not None and 0 < content.duration_ms <= MAX_DURATION_MS:
        if shape.duration_in_seconds:
            # Rounded, never to 0: the protocol wants a positive length.
            info["duration"] = max(1, round(content.duration_ms / 1000))
        else:
            info["duration_ms"] = content.duration_ms
    if content.track_number is not None:
        info["tracknumber"] = content.track_number
    info.update(_mbids(content))
    info["submission_client"] = SUBMISSION_CLIENT
    info["submission_client_version"] = SUBMISSION_CLIENT_VERSION
    return info


def _mbids(content: Content) -> dict[str, Any]:
    ids = content.external_ids
    if ids is None:
        return {}
    isrc = _clean(ids.isrc or "").strip()
    found: dict[str, Any] = {
        "recording_mbid": ids.musicbrainz_recording,
        "release_mbid": ids.musicbrainz_release,
        "release_group_mbid": ids.musicbrainz_release_group,
        "artist_mbids": ids.musicbrainz_artists or None,
        "isrc": isrc or None,
    }
    return {key: value for key, value in found.items() if value is not None}


def _love(content: Content, label: str) -> dict[str, Any]:
    ids = content.external_ids
    if ids is None or ids.musicbrainz_recording is None:
        raise Unsendable(f"{label} feedback needs a recording MBID")
    return {"recording_mbid": ids.musicbrainz_recording, "score": 1}


def _listened_at(moment: datetime, label: str) -> int:
    # The contract's times carry an offset; a naive one is read as UTC, never local time.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    seconds = math.floor(aware.timestamp())
    if seconds < MIN_LISTENED_AT:
        raise Unsendable(f"{label} takes no listens before 2002-10-01")
    return seconds


def _clean(text: str) -> str:
    return text.replace("\x00", "")


def _submission(listen_type: str, listens: list[dict[str, Any]]) -> dict[str, Any]:
    return {"listen_type": listen_type, "payload": listens}


def _check_batch(works: Sequence[ScrobbleWork]) -> None:
    if not 1 <= len(works) <= MAX_LISTENS_PER_IMPORT:
        raise ValueError(f"an import takes 1 to {MAX_LISTENS_PER_IMPORT} listens, not {len(works)}")
    if any(work.kind is not WorkKind.SCROBBLE for work in works):
        raise ValueError("an import takes only scrobble work")
    if len({work.connection_id for work in works}) > 1:
        raise ValueError("an import goes to one connection")


def _check_size(body: Mapping[str, Any], listens: int, label: str) -> None:
    # Default json.dumps (ASCII escapes, ", " and ": ") is at least as long as any usual
    # encoder's output (httpx's compact UTF-8 included), so passing here passes there.
    size = len(json.dumps(body))
    limit = min(MAX_BODY_BYTES, listens * MAX_BYTES_PER_LISTEN)
    if size > limit:
        raise ValueError(
            f"too large for {label}: {size} bytes for {listens} listen(s), at most {limit}"
        )


# --- answers -----------------------------------------------------------------------------


def _classify_success(response: HttpResponse) -> Outcome:
    body = response.json()
    if isinstance(body, dict) and body.get("status") == "ok":
        return Outcome.done("accepted", response.status)
    # Not ListenBrainz's answer (a proxy page?); sending again is safe: listens are
    # deduplicated by the server and playing_now and feedback are idempotent.
    return Outcome.retry(f"unexpected answer to HTTP {response.status}", response.status)


def _server_message(response: HttpResponse) -> str | None:
    body = response.json()
    if not isinstance(body, dict):
        return None
    message = body.get("error") or body.get("message")
    if not isinstance(message, str) or not message.strip():
        return None
    return message.strip()[:_MESSAGE_BUDGET]


def _retry_after_s(response: HttpResponse) -> float | None:
    retry_after = retry_after_s(response)
    if retry_after is not None:
        return retry_after
    return seconds_header(response, "X-RateLimit-Reset-In")
