"""Acceptance 2: an import whose worker is killed (SIGKILL) half way is finished by the
next worker from its saved cursor, with nothing twice: not in ``imported_items``, not on
the ``imported`` topic, and no page asked for again except the one in flight.

Simkl's import is four calls and AniList's and Maloja's twenty-one, quicker than a test can
poll, so their fakes hold the worker half way: Simkl's anime library never answers the first
worker (killed while it waits), AniList and Maloja answer every page 300 ms late."""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from typing import Any

import asyncpg
import pytest

from scrobble_sandbox.core.recording import RecordedRequest
from scrobble_sandbox.maloja.fake import MalojaFake
from tests.integration.imports.support import ImportSetup
from tests.integration.imports.test_full_and_incremental import ITEMS, at, track_seed, trakt_seed
from tests.support.kafka import collect

pytestmark = pytest.mark.integration


SIMKL_MOVIES, SIMKL_EPISODES, SIMKL_ANIME = 1_000, 4_000, 2_000


def simkl_seed(imports: ImportSetup) -> int:
    """Plays in all three libraries (every movie once, every episode once): the items the
    fake holds, each one play to import."""
    sb = imports.sandbox
    movies = [
        {
            "type": "movie",
            "movie": {"title": f"Movie {n}", "year": 1990 + n % 30, "ids": {"simkl": 700_000 + n}},
            "watched_at": at(n).isoformat(),
        }
        for n in range(SIMKL_MOVIES)
    ]

    def episodes(kind: str, count: int, shows: int, first_id: int) -> list[dict[str, Any]]:
        return [
            {
                "type": kind,
                kind: {"title": f"{kind} {n % shows}", "ids": {"simkl": first_id + n % shows}},
                "watched_at": at(n).isoformat(),
                "episode": {"season": 1, "number": 1 + n // shows},
            }
            for n in range(count)
        ]

    sb.simkl.seed("history", movies)
    sb.simkl.seed("history", episodes("show", SIMKL_EPISODES, 100, 500_000))
    sb.simkl.seed("history", episodes("anime", SIMKL_ANIME, 50, 800_000))
    return len(sb.simkl.state.history)


def anilist_seed(imports: ImportSetup) -> int:
    """List entries, every tenth scored: an entry and a score each an item to import."""
    entries = [
        {"mediaId": 100_000 + n, "status": "COMPLETED", "progress": 12}
        | ({"scoreRaw": 80} if n % 10 == 0 else {})
        for n in range(ITEMS)
    ]
    imports.sandbox.anilist.seed("entries", entries)
    return len(entries) + sum(1 for e in entries if "scoreRaw" in e)


def seed(imports: ImportSetup, service: str) -> int:
    """History in the fake; returns how many items it holds to import."""
    sb = imports.sandbox
    if service == "simkl":
        return simkl_seed(imports)
    if service == "anilist":
        return anilist_seed(imports)
    if service == "trakt":
        trakt_seed(sb, 0, ITEMS)
    elif service == "lastfm":
        sb.lastfm.seed(
            "scrobbles",
            [
                dict(zip(("artist", "track", "timestamp"), track_seed(n), strict=True))
                for n in range(ITEMS)
            ],
        )
    elif service == "maloja":
        sb.fake("maloja", MalojaFake).seed(
            "scrobbles",
            [
                {"time": int(at(n).timestamp()), "artist": track_seed(n)[0], "title": f"T{n}"}
                for n in range(ITEMS)
            ],
        )
    else:
        sb.listenbrainz.seed(
            "listens",
            [
                {
                    "listened_at": int(at(n).timestamp()),
                    "track_metadata": {
                        "artist_name": track_seed(n)[0],
                        "track_name": track_seed(n)[1],
                    },
                }
                for n in range(ITEMS)
            ],
        )
    return ITEMS


def hold_half_way(imports: ImportSetup, service: str) -> None:
    """Keep the first worker half way (see the module docstring); faults end at the kill."""
    sb = imports.sandbox
    if service == "simkl":
        sb.simkl.faults.hang(path_prefix="/sync/all-items/anime")
    elif service == "anilist":
        sb.anilist.faults.slow(300, count=1_000)
    elif service == "maloja":
        sb.fake("maloja", MalojaFake).faults.slow(300, count=1_000)


def page_requests(imports: ImportSetup, service: str) -> list[RecordedRequest]:
    sb = imports.sandbox
    if service == "trakt":
        return sb.trakt.requests("/sync/history")
    if service == "simkl":
        return sb.simkl.requests("/sync/")
    if service == "anilist":
        return sb.anilist.requests("/")
    if service == "lastfm":
        return [
            r for r in sb.lastfm.requests("/") if r.query.get("method") == "user.getrecenttracks"
        ]
    if service == "maloja":
        return sb.fake("maloja", MalojaFake).requests("/apis/mlj_1/scrobbles")
    return sb.listenbrainz.requests("/user/sandbox/listens")


def position(service: str, request: RecordedRequest) -> str:
    """Which page a request asked for."""
    if service == "simkl":  # /sync/activities, /sync/all-items/<type>
        return request.path.rsplit("/", 1)[-1]
    if service == "anilist":  # the Viewer query, then chunk after chunk
        return str(request.body["variables"].get("chunk", "viewer"))
    return str(request.query["max_ts" if service == "listenbrainz" else "page"])


def cursor_position(service: str, cursor: dict[str, Any]) -> str:
    """Which page a saved cursor names."""
    if service == "simkl":
        return str(cursor.get("type", cursor["step"]))
    if service == "anilist":
        return str(cursor.get("chunk", cursor["step"]))
    return str(cursor["max_ts" if service == "listenbrainz" else "page"])


# Read pacing as in test_full_and_incremental (Trakt's 100 pages and AniList's 21 calls fit
# their fakes' limits).
@pytest.mark.parametrize(
    ("service", "kill_after", "pacing"),
    [
        ("trakt", 30, False),
        ("lastfm", 15, True),
        ("listenbrainz", 4, True),
        ("simkl", 3, True),  # activities, movies and shows saved; anime in flight
        ("anilist", 8, False),  # Viewer and 7 of 20 chunks saved
        ("maloja", 6, True),  # 6 of 21 pages saved, each answered 300 ms late
    ],
)
async def test_killed_half_way_resumes_without_duplicates(
    imports: ImportSetup, service: str, kill_after: int, pacing: bool
) -> None:
    await imports.connect(service)
    items = seed(imports, service)
    hold_half_way(imports, service)
    first = imports.worker(read_pacing=pacing, name="first")
    await first.start()
    job = await imports.start(service)
    half = await imports.wait_job(job["id"], first, until=lambda j: j["pages_done"] >= kill_after)
    await first.stop(signal.SIGKILL)
    imports.sandbox.fakes[service].faults.clear()
    killed = await imports.job(job["id"])
    assert killed["state"] == "running", killed  # left behind, its lease still on
    conn = await asyncpg.connect(imports.gateway.database_url)
    try:
        saved = json.loads(
            await conn.fetchval(
                "SELECT cursor FROM import_jobs WHERE id = $1", uuid.UUID(job["id"])
            )
        )
    finally:
        await conn.close()
    asked_before = len(page_requests(imports, service))
    assert half["pages_done"] < asked_before + 1

    second = imports.worker(read_pacing=pacing, name="second")
    await second.start()
    try:
        done = await imports.wait_job(job["id"], second, deadline_s=120)
    finally:
        assert await second.stop() == 0
    assert done["state"] == "done", second.log_tail()
    assert 0 < half["items_added"] < items  # killed with part of it imported
    assert await imports.count("SELECT count(*) FROM imported_items") == items
    assert done["items_added"] == items
    after = page_requests(imports, service)[asked_before:]
    assert position(service, after[0]) == cursor_position(service, saved)
    everything = [position(service, r) for r in page_requests(imports, service)]
    repeated = [p for p, n in Counter(everything).items() if n > 1]
    assert len(repeated) <= 1, repeated  # at most the page in flight when it was killed
    messages = await collect(
        imports.env["KAFKA_BOOTSTRAP_SERVERS"], [imports.imported_topic], items, settle_s=3.0
    )
    ids = Counter(m.headers["message-id"] for m in messages)
    assert len(ids) == items
    assert max(ids.values()) == 1
