"""Maloja history import (pure): its native API, ``GET <server>/apis/mlj_1/scrobbles``,
newest first, paged by number (``page`` from 0, ``perpage``), each scrobble
``{time, track: {artists, title, album: {albumtitle} | null, length}}``. The list is public:
no key is sent (Maloja would want it in the query string, where proxies log it).

Maloja's ranges are days, not moments (``from``/``to`` as ``YYYY/M/D`` in the server's own
UTC offset), and without ``from`` it lists nothing older than the oldest scrobble it held
when it started (a scrobble sent later for an earlier time is left out until it restarts).
So every page names both days: ``from`` the day before the job's ``since`` (or 1970) and
``to`` the day after its ``until``, a day either side for any offset; the moments are then
the reader's to keep: what is newer than ``until`` is not this job's, and paging stops at
the first page that reaches below ``since``.

Pages are offsets into a list that can grow while the job reads it (the user's player, or
our own delivery, scrobbling into the range): what is added pushes older scrobbles towards
later pages, so a page may repeat some of the one before (duplicates the database ignores),
never skip one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from scrobble_shared.trackers.history import (
    Cursor,
    ImportedItem,
    JobContext,
    Page,
    UnexpectedAnswer,
    judge_status,
    mapping,
    parse_time,
    text,
    track_play,
    unix_s,
)
from scrobble_shared.trackers.http import USER_AGENT, HttpRequest, HttpResponse, Outcome
from scrobble_shared.trackers.maloja.client import maloja_client
from scrobble_shared.trackers.maloja.limits import write_keys
from scrobble_shared.trackers.pace import PaceFor, PaceKey

NATIVE_API: Final = "/apis/mlj_1"
PER_PAGE: Final = 500
# Before any scrobble: Maloja's ranges need a first day.
EARLIEST_DAY: Final = "1970/1/1"
_DAY: Final = timedelta(days=1)


class MalojaReader:
    service = "maloja"

    def __init__(self, api_url: str, per_page: int = PER_PAGE) -> None:
        self._api_url = api_url.rstrip("/")
        self._per_page = per_page
        self._client = maloja_client(api_url)

    def start(self, ctx: JobContext) -> Cursor:
        return {"page": 0}

    def request(self, cursor: Cursor, ctx: JobContext) -> HttpRequest:
        first = EARLIEST_DAY if ctx.since is None else maloja_day(ctx.since - _DAY)
        params = {
            "page": str(cursor["page"]),
            "perpage": str(self._per_page),
            "from": first,
            "to": maloja_day(ctx.until + _DAY),
        }
        server = (ctx.api_url or self._api_url).rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        return HttpRequest("GET", f"{server}{NATIVE_API}/scrobbles", headers, params=params)

    def read(self, cursor: Cursor, response: HttpResponse, ctx: JobContext) -> Page:
        body = response.json()
        scrobbles = body.get("list") if isinstance(body, dict) else None
        if not isinstance(scrobbles, list):
            raise UnexpectedAnswer("Maloja answered without a list of scrobbles")
        until = unix_s(ctx.until)
        since = None if ctx.since is None else unix_s(ctx.since)
        items: list[ImportedItem] = []
        skipped = 0
        oldest: int | None = None
        for scrobble in scrobbles:
            item = scrobble_item(scrobble)
            if item is None:
                skipped += 1
                continue
            at = unix_s(item.occurred_at)
            oldest = at if oldest is None else min(oldest, at)
            # The page's days reach a day either side of the job's moments.
            if at <= until and (since is None or at >= since):
                items.append(item)
        below_since = since is not None and oldest is not None and oldest < since
        after = None
        if len(scrobbles) >= self._per_page and not below_since:
            after = {"page": int(cursor["page"]) + 1}
        return Page(items, after, skipped=skipped)

    def judge(self, response: HttpResponse) -> Outcome | None:
        return judge_status("Maloja", response)

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        return write_keys(PaceFor(connection_id, app_key))

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        return self._client.wait_before_next_s(response)


def maloja_day(moment: datetime) -> str:
    """The UTC day of ``moment`` as Maloja's ranges name days: ``2026/3/1``."""
    day = moment.astimezone(UTC)
    return f"{day.year}/{day.month}/{day.day}"


def scrobble_item(scrobble: Any) -> ImportedItem | None:
    """One of Maloja's scrobbles as a listen (None when it is not one)."""
    if not isinstance(scrobble, dict):
        return None
    time = scrobble.get("time")
    at = parse_time(time) if isinstance(time, int) and not isinstance(time, bool) else None
    track = mapping(scrobble.get("track"))
    names = track.get("artists")
    artists = tuple(a for a in map(text, names if isinstance(names, list) else []) if a)
    title = text(track.get("title"))
    if at is None or not artists or title is None:
        return None
    album = text(mapping(track.get("album")).get("albumtitle"))
    item = track_play(", ".join(artists), title, at, {}, album, scrobble)
    return replace(item, artists=artists)
