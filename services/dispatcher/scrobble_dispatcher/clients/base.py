"""What every service client is made of: work in, a request out, a response in, an outcome
out. Pure: nothing here touches the network, a clock or a database.

The dispatcher acts on an :class:`Outcome` (failure policy lives there, not here):

- ``DONE`` / ``ALREADY_DONE``: record as sent (a service's own duplicate rule, such as a
  Trakt or Simkl 409, counts as done).
- ``RETRY``: transient; try again no earlier than ``retry_after_s`` when the service said
  so (Retry-After, X-RateLimit-Reset-In), else after the configured backoff.
- ``REFRESH``: the access token was refused; refresh it once, then try again.
- ``RECONNECT``: the user must connect again (revoked session, refresh refused); the work
  waits instead of dying.
- ``PERMANENT``: will never succeed as it is (bad request, not found, filtered): dead, with
  a reason a person can read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Final, Literal, Protocol
from uuid import UUID

from scrobble_shared.events import Content
from scrobble_shared.settings import ServiceName, Settings
from scrobble_shared.work import WorkKind

USER_AGENT: Final = "revenge-scrobble/0.1 (+https://github.com/revenge-scrobble)"


@dataclass(frozen=True)
class HttpRequest:
    """One call to make. Exactly one of ``json`` and ``form`` is the body (or neither)."""

    method: Literal["GET", "POST"]
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None


@dataclass(frozen=True)
class HttpResponse:
    """What came back; header names in lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# --- waiting, as an answer tells it (no clock: dates are measured against its Date) --------


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (``Fri, 20 Nov 2026 21:04:05 GMT`` or an obsolete form) as an aware
    datetime, UTC when it names no zone; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def seconds_until(response: HttpResponse, until: datetime | None) -> float | None:
    """Seconds from the answer's own Date header to ``until`` (0 when already past); None
    without a readable Date or ``until``. Naive ``until`` counts as UTC."""
    sent = http_date(response.header("Date"))
    if sent is None or until is None:
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return max((until - sent).total_seconds(), 0.0)


def seconds_header(response: HttpResponse, name: str) -> float | None:
    """A header holding a number of seconds (Retry-After, X-RateLimit-Reset-In); None when
    absent, not a number, negative or not finite."""
    raw = response.header(name)
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_after_s(response: HttpResponse) -> float | None:
    """Retry-After in seconds: delay-seconds (:func:`seconds_header`), or an HTTP date
    measured against the answer's own Date header. None when absent, unreadable, or a date
    without a Date to measure it from."""
    seconds = seconds_header(response, "Retry-After")
    if seconds is not None:
        return seconds
    raw = response.header("Retry-After")
    return None if raw is None else seconds_until(response, http_date(raw))


class OutcomeKind(StrEnum):
    DONE = "done"
    ALREADY_DONE = "already_done"
    RETRY = "retry"
    REFRESH = "refresh"
    RECONNECT = "reconnect"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Outcome:
    """What the dispatcher should do about one piece of work after one response."""

    kind: OutcomeKind
    reason: str
    http_status: int | None = None
    retry_after_s: float | None = None

    @classmethod
    def done(cls, reason: str = "accepted", status: int | None = None) -> Outcome:
        return cls(OutcomeKind.DONE, reason, status)

    @classmethod
    def already_done(cls, reason: str, status: int | None = None) -> Outcome:
        return cls(OutcomeKind.ALREADY_DONE, reason, status)

    @classmethod
    def retry(cls, reason: str, status: int | None = None, after_s: float | None = None) -> Outcome:
        return cls(OutcomeKind.RETRY, reason, status, after_s)

    @classmethod
    def refresh(cls, reason: str, status: int | None = None) -> Outcome:
        return cls(OutcomeKind.REFRESH, reason, status)

    @classmethod
    def reconnect(cls, reason: str, status: int | None = None) -> Outcome:
        return cls(OutcomeKind.RECONNECT, reason, status)

    @classmethod
    def permanent(cls, reason: str, status: int | None = None) -> Outcome:
        return cls(OutcomeKind.PERMANENT, reason, status)


class Unsendable(Exception):
    """The work cannot become a request for this service (for example no id it accepts).
    The message is the readable reason that goes into history; the outcome is permanent."""


@dataclass(frozen=True)
class ScrobbleWork:
    """One message of ``scrobble.<service>`` as the ingest service writes it (README)."""

    scrobble_id: UUID
    connection_id: UUID
    user_id: UUID
    service: ServiceName
    kind: WorkKind
    dedupe_key: str
    occurred_at: datetime
    content: Content
    progress_percent: float | None = None
    rating: float | None = None
    play_id: UUID | None = None
    source_event_id: UUID | None = None

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> ScrobbleWork:
        def optional_uuid(name: str) -> UUID | None:
            value = message.get(name)
            return None if value is None else UUID(value)

        return cls(
            scrobble_id=UUID(message["scrobble_id"]),
            connection_id=UUID(message["connection_id"]),
            user_id=UUID(message["user_id"]),
            service=message["service"],
            kind=WorkKind(message["kind"]),
            dedupe_key=message["dedupe_key"],
            occurred_at=datetime.fromisoformat(message["occurred_at"]),
            content=Content.model_validate(message["content"]),
            progress_percent=message.get("progress_percent"),
            rating=message.get("rating"),
            play_id=optional_uuid("play_id"),
            source_event_id=optional_uuid("source_event_id"),
        )


@dataclass(frozen=True)
class AppCredentials:
    """The app's own credentials at a service (client id and secret, or API key and secret)."""

    client_id: str
    client_secret: str = field(repr=False, default="")

    @classmethod
    def from_settings(cls, settings: Settings, service: ServiceName) -> AppCredentials:
        """The configured app credentials of ``service`` (empty when not configured)."""
        config = settings.service(service)
        secret = config.client_secret.get_secret_value() if config.client_secret else ""
        return cls(config.client_id or "", secret)


@dataclass(frozen=True)
class UserCredentials:
    """The user's credential: access token, Last.fm session key or ListenBrainz token."""

    token: str = field(repr=False)


class ServiceClient(Protocol):
    """The pure part of a client; one per service."""

    service: ServiceName

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest:
        """The request for this work; raises :class:`Unsendable` when there is none."""
        ...

    def classify(self, work: ScrobbleWork, response: HttpResponse) -> Outcome:
        """What the response means for this work."""
        ...

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        """Seconds to hold the next call to this service (rate-limit headers), if any."""
        ...
