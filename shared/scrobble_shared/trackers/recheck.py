"""Is it there already? Asked of the service before work goes out again after an attempt
whose outcome nobody saw: the sender died mid-call, the answer was cut off or came after
the timeout, or Postgres was away when it came. Only for the calls the service does not
deduplicate itself: Trakt and Simkl history adds, Last.fm scrobbles (each tracker's
``recheck.py``). A Trakt or Simkl scrobble stop repeated within the hour is answered 409;
ListenBrainz stores a listen once; a rating, a love or AniList progress is set, not added.

Found by the chaos harness (bench/chaos): answers dropped mid-way or cut with their
connection sent history adds twice.

Pure, like the clients: each service's question as a request, and what its answer says.
The dispatcher pays the call, paced on the service's read limits, and decides: there
already, done; not there, send; no usable answer, try again later like a failed write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from uuid import UUID

from scrobble_shared.trackers.http import HttpRequest, HttpResponse, UserCredentials
from scrobble_shared.trackers.pace import PaceKey
from scrobble_shared.work_message import ScrobbleWork

# Services keep times to the second (or less): an entry this close to the work's moment
# is the same watch.
SAME_MOMENT: Final = timedelta(seconds=1)


class NoAnswer(Exception):
    """The answer says nothing about whether the work is there (not 2xx, not the shape
    the service documents)."""


class Recheck(Protocol):
    """The pure part of one service's question."""

    service: str

    def applies(self, work: ScrobbleWork) -> bool:
        """Whether a repeat of this work would be kept twice by the service."""
        ...

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest | None:
        """The question, or None when it cannot be asked (Last.fm without a user name)."""
        ...

    def holds(self, work: ScrobbleWork, response: HttpResponse) -> bool:
        """What the answer says; raises :class:`NoAnswer`."""
        ...

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]: ...


def moment_of(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def close_to(text: Any, moment: datetime) -> bool:
    found = moment_of(text)
    return found is not None and abs(found - moment) <= SAME_MOMENT


def same_ids(found: Any, ours: Mapping[str, Any]) -> bool:
    """Any id kind both name, with the same value (``949`` and ``"949"`` alike)."""
    if not isinstance(found, Mapping):
        return False
    return any(
        name in found and str(found[name]).casefold() == str(value).casefold()
        for name, value in ours.items()
    )


def same_item(found: Any, ours: Mapping[str, Any]) -> bool:
    """The same movie or show: by an id, or by title and year when ours has no ids."""
    if not isinstance(found, Mapping):
        return False
    if ours.get("ids"):
        return same_ids(found.get("ids"), ours["ids"])
    return (found.get("title"), found.get("year")) == (ours.get("title"), ours.get("year"))


def json_list(response: HttpResponse) -> list[Any]:
    if not 200 <= response.status < 300:
        raise NoAnswer(f"HTTP {response.status}")
    body = response.json()
    if not isinstance(body, list):
        raise NoAnswer("not a list")
    return body
