"""ListenBrainz history import (pure): ``GET /1/user/{user}/listens?count&max_ts&min_ts``,
newest first, paged backwards: each page asks for what is older than the oldest listen of
the page before (``max_ts``, exclusive at the server).

The first ``max_ts`` is the job's ``until`` and ``min_ts`` the last finished import's end.
Two listens may share a second; ``max_ts`` is exclusive, so asking strictly below the
oldest one would skip those of that second the page did not hold. The next page therefore
asks below *oldest + 1* and reads that second again (what it already has is a duplicate
the database ignores), except when a whole page is one second, which would never move on.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote
from uuid import UUID

from scrobble_shared.trackers.history import (
    Cursor,
    ImportedItem,
    ImportRefused,
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
from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient
from scrobble_shared.trackers.listenbrainz.limits import write_keys
from scrobble_shared.trackers.pace import PaceFor, PaceKey

PAGE_COUNT: Final = 1000


class ListenBrainzReader:
    service = "listenbrainz"

    def __init__(self, api_url: str, count: int = PAGE_COUNT) -> None:
        self._api_url = api_url.rstrip("/")
        self._count = count
        self._client = ListenBrainzClient(api_url)

    def start(self, ctx: JobContext) -> Cursor:
        if not ctx.user_name:
            raise ImportRefused("the ListenBrainz user name of this connection is unknown")
        return {"max_ts": unix_s(ctx.until) + 1}

    def request(self, cursor: Cursor, ctx: JobContext) -> HttpRequest:
        params = {"count": str(self._count), "max_ts": str(cursor["max_ts"])}
        if ctx.since is not None:
            params["min_ts"] = str(unix_s(ctx.since) - 1)  # min_ts is exclusive too
        headers = {"Authorization": f"Token {ctx.token}", "User-Agent": USER_AGENT}
        url = f"{self._api_url}/user/{quote(ctx.user_name or '', safe='')}/listens"
        return HttpRequest("GET", url, headers, params=params)

    def read(self, cursor: Cursor, response: HttpResponse, ctx: JobContext) -> Page:
        body = response.json()
        payload = body.get("payload") if isinstance(body, dict) else None
        listens = payload.get("listens") if isinstance(payload, dict) else None
        if not isinstance(listens, list):
            raise UnexpectedAnswer("ListenBrainz answered without payload.listens")
        items = [i for i in (listen_item(x) for x in listens) if i is not None]
        stamps = [
            x["listened_at"]
            for x in listens
            if isinstance(x, dict) and isinstance(x.get("listened_at"), int)
        ]
        after: Cursor | None = None
        if len(listens) >= self._count and stamps:
            oldest = min(stamps)
            step = oldest + 1 if oldest + 1 < int(cursor["max_ts"]) else oldest
            after = {"max_ts": step}
        return Page(items, after, skipped=len(listens) - len(items))

    def judge(self, response: HttpResponse) -> Outcome | None:
        return judge_status("ListenBrainz", response)

    def pacing_keys(self, connection_id: UUID, app_key: str) -> list[PaceKey]:
        # No fixed figure: the per-user key on which X-RateLimit-Reset-In is honoured.
        return write_keys(PaceFor(connection_id, app_key))

    def wait_before_next_s(self, response: HttpResponse) -> float | None:
        return self._client.wait_before_next_s(response)


def listen_item(listen: Any) -> ImportedItem | None:
    if not isinstance(listen, dict):
        return None
    at = parse_time(listen.get("listened_at"))
    meta = listen.get("track_metadata")
    if at is None or not isinstance(meta, dict):
        return None
    artist, title = text(meta.get("artist_name")), text(meta.get("track_name"))
    if artist is None or title is None:
        return None
    info = mapping(meta.get("additional_info"))
    ids: dict[str, Any] = {}
    for theirs, ours in (
        ("recording_mbid", "musicbrainz_recording"),
        ("release_mbid", "musicbrainz_release"),
        ("release_group_mbid", "musicbrainz_release_group"),
    ):
        if text(info.get(theirs)):
            ids[ours] = info[theirs].strip()
    return track_play(artist, title, at, ids, text(meta.get("release_name")), listen)
