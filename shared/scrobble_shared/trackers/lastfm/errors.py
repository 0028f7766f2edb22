"""The Last.fm 2.0 protocol's error codes: ONE table, read by delivery (``client.py``) and
history imports (``history.py``) alike, and by every tracker that speaks the protocol
(Libre.fm). The protocol puts its errors in the body whatever the HTTP status.

What each code means for a piece of work (Last.fm's API error page, EXTERNAL_APIS.md):

- retried: 8 (operation failed: "most likely the backend service failed, please try
  again"), 11 (service offline), 16 (temporary error), with the growing backoff;
- rate limited: 29, the work waits what the answer says (Retry-After when one came, else
  :data:`RATE_LIMIT_BACKOFF_S`) without spending an attempt;
- reconnect: 9 (invalid session key: revoked), 14 (token not authorized): no call will
  work until the user connects again;
- permanent: every other code (2, 3, 4 authentication failed, 5, 6, 7, 10 invalid API key,
  13 bad signature, 26 suspended key...): sending the same call again cannot succeed.

Before this table, delivery retried 8 only with a 5xx status and took 14 for permanent,
while imports always retried 8 and reconnected on 14.

An error comes in one of two JSON shapes: ``{"error": 9, "message": "..."}`` (Last.fm, and
GNU FM's ``report_failure``), or ``{"error": {"code": "16", "#text": "..."}}`` where GNU FM
(Libre.fm) turns its XML error element into JSON (``JSONEncoder::encodeXML``: an answer its
method built, such as error 16 when its database failed or 7 for an unknown track). Both
are read here, so no error of either goes for a success.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from scrobble_shared.trackers.http import HttpResponse, Outcome, retry_after_s

RATE_LIMIT_BACKOFF_S: Final = 10.0
"""How long to hold calls after error 29 when no Retry-After came (Last.fm sends none and no
limit headers; one put in by a proxy or a fake is honoured)."""


class Meaning(StrEnum):
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    RECONNECT = "reconnect"
    PERMANENT = "permanent"


ERRORS: Final[dict[int, Meaning]] = {
    8: Meaning.RETRY,
    9: Meaning.RECONNECT,
    11: Meaning.RETRY,
    14: Meaning.RECONNECT,
    16: Meaning.RETRY,
    29: Meaning.RATE_LIMITED,
}


def meaning(code: int) -> Meaning:
    """What error ``code`` means (module docstring); unknown codes are permanent."""
    return ERRORS.get(code, Meaning.PERMANENT)


def is_rate_limit(code: int) -> bool:
    return meaning(code) is Meaning.RATE_LIMITED


def as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def error_code(body: Any) -> int | None:
    """The ``error`` of an answer's body, when it carries one (either shape: module
    docstring)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return as_int(error.get("code"))
    return as_int(error)


def error_message(body: Any) -> str | None:
    """The words that came with the error, in either shape."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    message = error.get("#text") if isinstance(error, dict) else body.get("message")
    return message if isinstance(message, str) and message else None


def rate_limit_wait_s(response: HttpResponse) -> float:
    """Retry-After when one came that can be read, else the fixed backoff."""
    after = retry_after_s(response)
    return RATE_LIMIT_BACKOFF_S if after is None else after


def error_outcome(code: int, label: str, body: Any, response: HttpResponse) -> Outcome:
    """The outcome of an answer carrying error ``code`` (``label``: the tracker as people
    write it, for the reason)."""
    reason = f"{label} error {code}: {error_message(body) or 'no message'}"
    status = response.status
    found = meaning(code)
    if found is Meaning.RETRY:
        return Outcome.retry(reason, status)
    if found is Meaning.RATE_LIMITED:
        return Outcome.slow_down(reason, status, rate_limit_wait_s(response))
    if found is Meaning.RECONNECT:
        return Outcome.reconnect(reason, status)
    return Outcome.permanent(reason, status)
