"""The AniList client: GraphQL requests for watched episodes and ratings, and what AniList's
answers mean. Pure, like every client here: no network, no clock.

One piece of work can take up to three calls, in this order (:meth:`AniListClient.steps`,
the conversation the dispatcher drives; each answer is classified with
:meth:`AniListClient.classify` before it is read):

1. the media id: :func:`anilist_media_id` from the content's ids, else
   :meth:`~AniListClient.build_media_lookup` with :func:`mal_media_id` and
   :func:`parse_media_lookup` (``None``: AniList does not know that MyAnimeList id);
2. for ``WATCHED`` only, the viewer's entry (:meth:`~AniListClient.build_current_entry`,
   :func:`parse_current_entry`), because AniList must never get a lower progress than the
   user already has: :func:`progress_to_save` returns ``None`` when there is nothing to do,
   which the dispatcher records as ``ALREADY_DONE``;
3. the write: :meth:`~AniListClient.build_save_progress` (progress = the episode number,
   status ``CURRENT``, or ``COMPLETED`` from the last episode) or
   :meth:`~AniListClient.build_save_score` (``scoreRaw`` 0-100 = rating x 10).

:meth:`AniListClient.build` (the :class:`~scrobble_shared.trackers.http.ServiceClient`
entry) goes straight to step 3 when the content carries an AniList id; with only a MyAnimeList
id it raises :class:`MediaLookupNeeded`. It skips step 2, so for ``WATCHED`` the steps are
the safe path, and the one the dispatcher takes.

AniList answers errors in ``errors[]``, sometimes with HTTP 200; each entry carries its own
``status``, which counts when the HTTP status does not say more. Tokens last a year and
cannot be refreshed, so a refused token means the user connects again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from scrobble_shared.events import Content
from scrobble_shared.service_names import ServiceName
from scrobble_shared.trackers.anilist.queries import (
    MEDIA_BY_MAL_ID,
    SAVE_PROGRESS,
    SAVE_SCORE,
    VIEWER_ENTRY,
)
from scrobble_shared.trackers.http import (
    USER_AGENT,
    Conversation,
    HttpRequest,
    HttpResponse,
    Outcome,
    OutcomeKind,
    Unsendable,
    UserCredentials,
    http_date,
    seconds_header,
)
from scrobble_shared.trackers.http import retry_after_s as retry_after_header_s
from scrobble_shared.work import WorkKind
from scrobble_shared.work_message import ScrobbleWork

ANILIST_API_URL: Final = "https://graphql.anilist.co"
NOT_FOUND_REASON: Final = "not found at AniList"
# When the limit is spent and the answer does not say until when: AniList's window.
RATE_WINDOW_S: Final = 60.0
_REASON_BUDGET: Final = 500
_AUTH_MESSAGES: Final = ("invalid token", "unauthorized")


class MediaLookupNeeded(Exception):
    """The content has a MyAnimeList id but no AniList id: look the media up first."""

    def __init__(self, mal_id: int) -> None:
        super().__init__(f"AniList media id unknown; look up MyAnimeList id {mal_id}")
        self.mal_id = mal_id


class UnexpectedAnswer(ValueError):
    """A parser got a response that is not the answer it reads (an error, a 429...):
    classify the response instead."""


@dataclass(frozen=True)
class ListEntry:
    """The viewer's list entry for one media, as far as a progress save needs it."""

    progress: int
    status: str | None


# --- what the work asks for ----------------------------------------------------------------


def anilist_media_id(content: Content) -> int | None:
    """The AniList media id on the item, else on its show."""
    for ids in (content.external_ids, content.show.external_ids if content.show else None):
        if ids is not None and ids.anilist is not None:
            return ids.anilist
    return None


def mal_media_id(content: Content) -> int | None:
    """The MyAnimeList id on the item, else on its show."""
    for ids in (content.external_ids, content.show.external_ids if content.show else None):
        if ids is not None and ids.mal is not None:
            return ids.mal
    return None


def episode_progress(work: ScrobbleWork) -> int:
    """The progress a watched episode stands for: its number."""
    if work.content.number is None:
        raise Unsendable("AniList progress needs the episode number")
    return work.content.number


def list_status(number: int, episode_count: int | None, current_status: str | None = None) -> str:
    """COMPLETED from the last episode on; a rewatch stays REPEATING; else CURRENT."""
    if episode_count is not None and number >= episode_count:
        return "COMPLETED"
    if current_status == "REPEATING":
        return "REPEATING"
    return "CURRENT"


def score_raw(rating: float) -> int:
    """A 1-10 rating as AniList's 0-100 raw score, halves rounded up (8.25 -> 83)."""
    return min(100, max(0, math.floor(rating * 10 + 0.5)))


def progress_to_save(current: int | None, wanted: int) -> int | None:
    """The progress to write, or None when the user already has this much or more."""
    if current is None or wanted > current:
        return wanted
    return None


def _check_sendable(work: ScrobbleWork) -> None:
    if work.kind is WorkKind.WATCHED:
        episode_progress(work)
    elif work.kind is WorkKind.RATING:
        if work.rating is None:
            raise Unsendable("AniList score needs a rating")
    else:
        raise Unsendable(f"AniList takes watched episodes and ratings, not {work.kind.value}")


# --- reading answers -----------------------------------------------------------------------


def _body(response: HttpResponse) -> dict[str, Any]:
    body = response.json()
    return body if isinstance(body, dict) else {}


def _errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = body.get("errors")
    if not isinstance(errors, list):
        return []
    return [e if isinstance(e, dict) else {"message": str(e)} for e in errors]


def _root(body: dict[str, Any], field: str) -> Any:
    data = body.get("data")
    return data.get(field) if isinstance(data, dict) else None


def _entry_status(error: dict[str, Any]) -> int | None:
    status = error.get("status")
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _status(response: HttpResponse, errors: list[dict[str, Any]]) -> int:
    """The HTTP status, or with HTTP 200 and errors[], the first error's own status."""
    if response.status != 200 or not errors:
        return response.status
    return _entry_status(errors[0]) or 400


def _messages(errors: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("message", "")) for e in errors]


def _is_not_found(status: int, errors: list[dict[str, Any]]) -> bool:
    return status == 404 or "Not Found." in _messages(errors)


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        text = str(error.get("message", "error"))
        validation = error.get("validation")
        if isinstance(validation, dict):
            text += ": " + ", ".join(f"{k}: {' '.join(map(str, v))}" for k, v in validation.items())
        parts.append(text)
    return "; ".join(parts)[:_REASON_BUDGET]


def parse_media_lookup(response: HttpResponse) -> int | None:
    """The AniList id from a :data:`MEDIA_BY_MAL_ID` answer; None when AniList has no anime
    with that MyAnimeList id."""
    body = _body(response)
    errors = _errors(body)
    if _is_not_found(_status(response, errors), errors):
        return None
    media = _root(body, "Media")
    if errors or not isinstance(media, dict) or not isinstance(media.get("id"), int):
        raise UnexpectedAnswer(f"not a media lookup answer (HTTP {response.status})")
    media_id: int = media["id"]
    return media_id


def parse_current_entry(response: HttpResponse) -> ListEntry | None:
    """The viewer's entry from a :data:`VIEWER_ENTRY` answer; None when the media is not on
    the viewer's list."""
    body = _body(response)
    media = _root(body, "Media")
    if _errors(body) or response.status != 200 or not isinstance(media, dict):
        raise UnexpectedAnswer(f"not a list entry answer (HTTP {response.status})")
    entry = media.get("mediaListEntry")
    if entry is None:
        return None
    progress = entry.get("progress") if isinstance(entry, dict) else None
    status = entry.get("status") if isinstance(entry, dict) else None
    return ListEntry(progress if isinstance(progress, int) else 0, status)


# --- timing --------------------------------------------------------------------------------


def _until_reset(response: HttpResponse) -> float | None:
    """Seconds until X-RateLimit-Reset (an epoch), measured from the answer's Date header
    rather than a local clock, which may be off."""
    reset, date = seconds_header(response, "X-RateLimit-Reset"), http_date(response.header("Date"))
    if reset is None or date is None:
        return None
    return max(0.0, reset - date.timestamp())


def retry_after_s(response: HttpResponse) -> float | None:
    """What the answer says about waiting: Retry-After, else X-RateLimit-Reset."""
    after = retry_after_header_s(response)
    return after if after is not None else _until_reset(response)


def wait_before_next_s(response: HttpResponse) -> float | None:
    """Seconds to hold the next AniList call: when refused (429) or when the answer says
    none are left this minute; None otherwise."""
    if response.status != 429 and response.header("X-RateLimit-Remaining") != "0":
        return None
    if response.status == 429:
        after = retry_after_s(response)
    else:
        after = _until_reset(response)
        after = after if after is not None else retry_after_header_s(response)
    return after if after is not None else RATE_WINDOW_S


# --- outcomes ------------------------------------------------------------------------------


def _is_auth_failure(status: int, errors: list[dict[str, Any]]) -> bool:
    if status == 401 or any(_entry_status(e) == 401 for e in errors):
        return True
    return any(m.lower().rstrip(".") in _AUTH_MESSAGES for m in _messages(errors))


def _has_data(body: dict[str, Any]) -> bool:
    data = body.get("data")
    return isinstance(data, dict) and any(v is not None for v in data.values())


def classify_response(response: HttpResponse) -> Outcome:
    """What one AniList answer means, whichever of the client's documents it answers."""
    body = _body(response)
    errors = _errors(body)
    status = _status(response, errors)
    said = _describe(errors)
    if status == 429:
        return Outcome.slow_down(
            "rate limited by AniList", response.status, wait_before_next_s(response)
        )
    if status >= 500:
        reason = f"AniList server error {status}" + (f": {said}" if said else "")
        return Outcome.retry(reason, response.status, retry_after_s(response))
    if _is_auth_failure(status, errors):
        return Outcome.reconnect(f"AniList refused the token: {said or status}", response.status)
    if _is_not_found(status, errors):
        return Outcome.permanent(NOT_FOUND_REASON, response.status)
    if errors:
        return Outcome.permanent(f"AniList refused the request: {said}", response.status)
    if not 200 <= status < 300:
        return Outcome.permanent(f"AniList answered HTTP {status}", response.status)
    if not _has_data(body):
        return Outcome.retry("AniList answered without data", response.status)
    return Outcome.done("accepted", response.status)


# --- the client ----------------------------------------------------------------------------


class AniListClient:
    """Requests for one AniList API (the real one, or the sandbox's at ``api_url``)."""

    service: ServiceName = "anilist"

    def __init__(self, api_url: str = ANILIST_API_URL) -> None:
        self.api_url = api_url

    def _post(
        self, query: str, variables: dict[str, Any], user: UserCredentials | None
    ) -> HttpRequest:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if user is not None:
            headers["Authorization"] = f"Bearer {user.token}"
        return HttpRequest(
            "POST", self.api_url, headers, json={"query": query, "variables": variables}
        )

    def build_media_lookup(self, mal_id: int, user: UserCredentials | None = None) -> HttpRequest:
        """The anime with this MyAnimeList id (public; a token only changes whose limit)."""
        return self._post(MEDIA_BY_MAL_ID, {"idMal": mal_id}, user)

    def build_current_entry(self, media_id: int, user: UserCredentials) -> HttpRequest:
        """The viewer's list entry (progress and status) for this media."""
        return self._post(VIEWER_ENTRY, {"mediaId": media_id}, user)

    def build_save_progress(
        self,
        work: ScrobbleWork,
        media_id: int,
        user: UserCredentials,
        current_status: str | None = None,
    ) -> HttpRequest:
        """Progress = the episode number; pass the entry's status to keep a rewatch one."""
        number = episode_progress(work)
        status = list_status(number, work.content.episode_count, current_status)
        variables = {"mediaId": media_id, "progress": number, "status": status}
        return self._post(SAVE_PROGRESS, variables, user)

    def build_save_score(
        self, work: ScrobbleWork, media_id: int, user: UserCredentials
    ) -> HttpRequest:
        if work.rating is None:
            raise Unsendable("AniList score needs a rating")
        variables = {"mediaId": media_id, "scoreRaw": score_raw(work.rating)}
        return self._post(SAVE_SCORE, variables, user)

    def build(self, work: ScrobbleWork, user: UserCredentials) -> HttpRequest:
        """The write for this work when the AniList id is known (see the module docstring)."""
        _check_sendable(work)
        media_id = anilist_media_id(work.content)
        if media_id is None:
            mal_id = mal_media_id(work.content)
            if mal_id is None:
                raise Unsendable("no AniList or MyAnimeList id for this item")
            raise MediaLookupNeeded(mal_id)
        if work.kind is WorkKind.WATCHED:
            return self.build_save_progress(work, media_id, user)
        return self.build_save_score(work, media_id, user)

    def steps(self, work: ScrobbleWork, user: UserCredentials) -> Conversation:
        """The media id (looked up by the MyAnimeList id when it must be), then for a
        watched episode the entry (never lower the progress), then the write."""
        _check_sendable(work)
        media_id = anilist_media_id(work.content)
        if media_id is None:
            mal_id = mal_media_id(work.content)
            if mal_id is None:
                raise Unsendable("AniList work without an AniList id needs a MyAnimeList id")
            not_found = f"{NOT_FOUND_REASON}: MyAnimeList id {mal_id}"
            answer = yield self.build_media_lookup(mal_id, user)
            if answer.outcome.kind is OutcomeKind.PERMANENT:
                return Outcome.permanent(not_found, answer.outcome.http_status)
            if answer.outcome.kind is not OutcomeKind.DONE or answer.response is None:
                return answer.outcome
            media_id = parse_media_lookup(answer.response)
            if media_id is None:
                return Outcome.permanent(not_found)
        if work.kind is not WorkKind.WATCHED:
            answer = yield self.build_save_score(work, media_id, user)
            return answer.outcome
        answer = yield self.build_current_entry(media_id, user)
        if answer.outcome.kind is not OutcomeKind.DONE or answer.response is None:
            return answer.outcome
        entry = parse_current_entry(answer.response)
        if progress_to_save(entry.progress if entry else None, episode_progress(work)) is None:
            return Outcome.already_done("AniList already has this episode or a later one")
        status = entry.status if entry else None
        answer = yield self.build_save_progress(work, media_id, user, status)
        return answer.outcome

    def classify(self, work: ScrobbleWork, response: HttpResponse) -> Outcome:
        return classify_response(response)

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        return wait_before_next_s(response)
