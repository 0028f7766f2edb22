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
    """The ``error`` of an answer's body, when it carries one."""
    return as_int(body.get("error")) if isinstance(body, dict) else None


def rate_limit_wait_s(response: HttpResponse) -> float:
    """Retry-After when one came that can be read, else the fixed backoff."""
    after = retry_after_s(response)
    return RATE_LIMIT_BACKOFF_S if after is None else after


def error_outcome(code: int, label: str, body: Any, response: HttpResponse) -> Outcome:
    """The outcome of an answer carrying error ``code`` (``label``: the tracker as people
    write it, for the reason)."""
    message = body.get("message") if isinstance(body, dict) else None
    reason = f"{label} error {code}: {message or 'no message'}"
    status = response.status
    found = meaning(code)
    if found is Meaning.RETRY:
        return Outcome.retry(reason, status)
    if found is Meaning.RATE_LIMITED:
        return Outcome.slow_down(reason, status, rate_limit_wait_s(response))
    if found is Meaning.RECONNECT:
        return Outcome.reconnect(reason, status)
    return Outcome.permanent(reason, status)
