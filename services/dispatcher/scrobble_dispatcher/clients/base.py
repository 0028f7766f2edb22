"""What every service client is made of: work in, a request out, a response in, an outcome
out. Pure: nothing here touches the network, a clock or a database.

The dispatcher acts on an :class:`Outcome` (failure policy lives there, not here):

- ``DONE`` / ``ALREADY_DONE``: record as sent (a service's own duplicate rule, such as a
  Trakt or Simkl 409, counts as done).
- ``RETRY``: transient; try again no earlier than ``retry_after_s`` when the service said
  so (Retry-After, X-RateLimit-Reset-In), else after the configured backoff. A retry that
  is ``rate_limited`` (429, Last.fm error 29) is the service pacing us, not a failure: the
  work waits what the service said and no attempt is spent.
- ``REFRESH``: the access token was refused; refresh it once, then try again.
- ``RECONNECT``: the user must connect again (revoked session, refresh refused); the work
  waits instead of dying.
- ``PERMANENT``: will never succeed as it is (bad request, not found, filtered): dead, with
  a reason a person can read.

Secrets stay secret: an :class:`HttpRequest` shows no credential in ``repr``/``str`` (the
Authorization header, tokens, session keys, signatures and client secrets read
``[redacted]``) and names them (:meth:`HttpRequest.secrets`) so that an answer quoting them
back can be cleaned (:meth:`Outcome.scrubbed`). A reason is a provider's words at most in
part: :func:`readable_reason` makes every :class:`Outcome`'s reason plain text (no markup,
no control characters) of at most :data:`REASON_LIMIT` characters, since reasons are stored
as ``last_error`` and shown by the API and the logs.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Final, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from scrobble_shared.service_names import ServiceName
from scrobble_shared.settings import Settings
from scrobble_shared.work_message import ScrobbleWork

USER_AGENT: Final = "revenge-scrobble/0.1 (+https://github.com/revenge-scrobble)"


REDACTED: Final = "[redacted]"
# Header names (lower case) and body, form or query field names whose values are secret.
# Client ids and API keys are not: they are public parts of the app, sent in browser URLs.
SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-session-key"}
)
SECRET_FIELDS: Final = frozenset(
    {
        "access_token",
        "api_sig",
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "password",
        "refresh_token",
        "secret",
        "session_key",
        "sk",
        "token",
        "user_token",
    }
)
# Shorter strings are not worth finding in a reason (and would match ordinary words).
_MIN_SECRET: Final = 6
# The least of a secret's beginning taken out where a text was cut off.
_CUT_PREFIX: Final = 4


def _redacted(value: Any, name: str | None = None) -> Any:
    """``value`` with every secret field's value replaced, at any depth of a JSON body."""
    if name is not None and name.lower() in SECRET_FIELDS and value is not None:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


def _secret_values(value: Any, name: str | None = None) -> list[str]:
    if name is not None and name.lower() in SECRET_FIELDS and value is not None:
        return [str(value)]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in _secret_values(v, str(k))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _secret_values(v)]
    return []


def _redacted_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query and not parts.password:
        return url
    query = urlencode([(k, _redacted(v, k)) for k, v in parse_qsl(parts.query, True)])
    netloc = parts.netloc.rsplit("@", 1)[-1] if parts.password else parts.netloc
    return parts._replace(query=query, netloc=netloc).geturl()


@dataclass(frozen=True, repr=False)
class HttpRequest:
    """One call to make. Exactly one of ``json`` and ``form`` is the body (or neither).
    Its ``repr`` (and ``str``) shows everything but the secrets."""

    method: Literal["GET", "POST"]
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        headers = {
            k: REDACTED if k.lower() in SECRET_HEADERS else v for k, v in self.headers.items()
        }
        shown = [f"method={self.method!r}", f"url={_redacted_url(self.url)!r}"]
        shown.append(f"headers={headers!r}")
        for name in ("json", "form", "params"):
            value = getattr(self, name)
            if value is not None:
                shown.append(f"{name}={_redacted(value)!r}")
        return f"HttpRequest({', '.join(shown)})"

    def secrets(self) -> list[str]:
        """The secret values this request carries (credentials in headers, secret fields
        of its body, form and query), each also without its auth scheme (``Bearer x``: x)."""
        found: list[str] = []
        for name, value in self.headers.items():
            if name.lower() in SECRET_HEADERS and value:
                found.append(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():
                    found.append(credential.strip())
        found += _secret_values(self.json)
        found += _secret_values(dict(self.form or {}))
        found += _secret_values(dict(self.params or {}))
        found += _secret_values(dict(parse_qsl(urlsplit(self.url).query, True)))
        return [s for s in dict.fromkeys(found) if len(s) >= _MIN_SECRET]


@dataclass(frozen=True, repr=False)
class HttpResponse:
    """What came back; header names in lower case. Its ``repr`` shows the size of the
    body, not the body (an answer may quote what was sent)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:
        headers = {
            k: REDACTED if k.lower() in SECRET_HEADERS else v for k, v in self.headers.items()
        }
        body = f"<{len(self.body)} bytes>"
        return f"HttpResponse(status={self.status}, headers={headers!r}, body={body})"

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


# --- reasons: what a person reads in history, dead letters and logs -------------------------

# A reason is stored as last_error / status_reason and shown by the API: at most this long.
REASON_LIMIT: Final = 500
_HIDDEN_BLOCKS: Final = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAG: Final = re.compile(r"<!--.*?-->|</?[A-Za-z!?][^<>]*>", re.S)
# Control characters go (a NUL, an escape sequence's ESC); line breaks and tabs become
# spaces: a reason is one line, in the API and in a log.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_SPACES: Final = re.compile(r"\s+")


def readable_reason(text: str, limit: int = REASON_LIMIT) -> str:
    """``text`` as one line of plain text of at most ``limit`` characters: markup dropped
    (an HTML error page becomes its words), entities decoded, control characters and runs
    of white space (line breaks too) made one space, other control characters dropped, the
    end cut with "…" when too long. Plain text of ours passes unchanged."""
    plain = _TAG.sub(" ", _HIDDEN_BLOCKS.sub(" ", text))
    if plain != text:
        plain = html.unescape(plain)
    plain = _SPACES.sub(" ", _CONTROL.sub("", plain)).strip()
    if len(plain) > limit:
        plain = plain[: limit - 1].rstrip() + "…"
    return plain


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` in it replaced by ``[redacted]``, and a
    secret's beginning where a cut (:func:`readable_reason`'s "…") ended the text."""
    wanted = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
    for secret in wanted:
        text = text.replace(secret, REDACTED)
    cut = text.endswith("…")
    body = text[:-1] if cut else text
    for secret in wanted:
        for size in range(min(len(secret), len(body)), _CUT_PREFIX - 1, -1):
            if body.endswith(secret[:size]):
                body = body[:-size] + REDACTED
                break
    return body + ("…" if cut else "")


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
    # A RETRY because the service said to slow down (429, Last.fm error 29): pacing, not
    # a failure (``Outcome.slow_down``).
    rate_limited: bool = False

    def __post_init__(self) -> None:
        # Reasons often quote the service's answer: plain and short, whoever built them.
        object.__setattr__(self, "reason", readable_reason(self.reason))

    def scrubbed(self, secrets: Iterable[str]) -> Outcome:
        """The same outcome, with the caller's own secrets taken out of its reason (an
        answer may quote the request it refuses)."""
        return replace(self, reason=scrub(self.reason, secrets))

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
    def slow_down(
        cls, reason: str, status: int | None = None, after_s: float | None = None
    ) -> Outcome:
        """A RETRY the service asked for by limiting us: wait ``after_s`` (what it said)."""
        return cls(OutcomeKind.RETRY, reason, status, after_s, rate_limited=True)

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
    """The user's credential: access token, Last.fm session key or ListenBrainz token; and
    the account's name at the service when known (not a secret: pacing keys by it)."""

    token: str = field(repr=False)
    account: str | None = None


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
