"""Acceptance 1 and 3, per service: a fake holding 10,000 history items is imported
completely, in bounded memory (peak RSS of the worker printed), with its pages asked for
the way the real API wants; a second import right after fetches only what is new.

Pacing: the worker paces reads on the services' read limits, except where noted: Trakt's
10,000 plays are 100 pages, 70 s at its paced 0.6 s + margin (500 GET / 5 min spread
evenly), and AniList's are 20 chunks, 42 s at 2 s + margin; both fakes' limits stay ON
and 100 (21) calls are within them back to back, so those two runs use the worker's
``--no-read-pacing`` and the tests still find no 429. The limits-and-pacing test
(test_sync_and_limits.py) runs every service at its real pacing.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scrobble_sandbox.core.recording import RecordedRequest
from scrobble_sandbox.maloja.fake import MalojaFake
from scrobble_shared.trackers.maloja.history import maloja_day
from tests.integration.imports.support import ImportSetup

pytestmark = pytest.mark.integration

ITEMS = 10_000
NEW_ITEMS = 25
# Maloja keeps one scrobble a second, so its new ones are a second apart: a few.
MALOJA_NEW = 5
BASE = datetime(2024, 1, 1, tzinfo=UTC)
NEW = 1_000_000


def at(n: int) -> datetime:
    """Item n's time: the seeded history is old; items from NEW on are played just now,
    after the first import (10 ms apart, so all before the second one starts)."""
    if n >= NEW:
        return datetime.now(UTC) - timedelta(milliseconds=10 * (n - NEW))
    return BASE + timedelta(minutes=7 * n)


def trakt_seed(sb: Any, first: int, count: int) -> None:
    sb.trakt.seed(
        "history",
        [
            {
                "type": "movie",
                "watched_at": at(n).isoformat(),
                "movie": {
                    "title": f"Movie {n % 500}",
                    "year": 1990 + n % 30,
                    "ids": {"trakt": 1_000_000 + n % 500, "tmdb": 2_000_000 + n % 500},
                },
            }
            for n in range(first, first + count)
        ],
    )


def no_429(records: list[RecordedRequest]) -> None:
    assert [r for r in records if r.status == 429] == []


async def run_import(
    setup: ImportSetup, service: str, *, read_pacing: bool
) -> tuple[dict[str, Any], float, float]:
    worker = setup.worker(read_pacing=read_pacing, name=f"{service}-{time.monotonic_ns()}")
    await worker.start()
    try:
        started = time.monotonic()
        job = await setup.start(service)
        done = await setup.wait_job(job["id"], worker)
        took = time.monotonic() - started
        rss = worker.peak_rss_mib()
    finally:
        assert await worker.stop() == 0
    assert done["state"] == "done", (done, worker.log_tail())
    return done, took, rss


async def test_trakt(imports: ImportSetup) -> None:
    sb = imports.sandbox
    await imports.connect("trakt")
    trakt_seed(sb, 0, ITEMS)
    first, took, rss = await run_import(imports, "trakt", read_pacing=False)
    print(f"\ntrakt: {ITEMS} plays in {took:.1f} s, worker peak RSS {rss:.0f} MiB")
    assert first["items_added"] == ITEMS
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS
    pages = sb.trakt.requests("/sync/history")
    assert [int(r.query["page"]) for r in pages] == list(range(1, 101))
    assert {r.query["limit"] for r in pages} == {"100"}
    assert {r.query["end_at"] for r in pages} == {pages[0].query["end_at"]}
    assert all("start_at" not in r.query for r in pages)
    assert len(sb.trakt.requests("/sync/ratings")) == 1
    no_429(sb.trakt.requests("/"))

    trakt_seed(sb, NEW, NEW_ITEMS)
    before = len(pages)
    second, _, _ = await run_import(imports, "trakt", read_pacing=False)
    assert second["items_added"] == NEW_ITEMS
    assert second["since"] == first["until"]
    later = sb.trakt.requests("/sync/history")[before:]
    assert len(later) == 1  # one page holds what is new
    assert later[0].query["start_at"].startswith(first["until"][:19])
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS + NEW_ITEMS
    no_429(sb.trakt.requests("/"))


def track_seed(n: int) -> tuple[str, str, int]:
    return f"Artist {n % 300}", f"Track {n}", int(at(n).timestamp())


# The Last.fm 2.0 protocol, at Last.fm and at Libre.fm. Libre.fm's ``from`` is strict, so
# the reader reaches back a second; it counts pages over the whole history, so the page
# after what is new is asked for, and answered with its error 7 (no scrobbles), which ends
# the import.
@pytest.mark.parametrize(
    ("service", "reach_back_s", "new_pages"), [("lastfm", 0, 1), ("librefm", 1, 2)]
)
async def test_lastfm_protocol(
    imports: ImportSetup, service: str, reach_back_s: int, new_pages: int
) -> None:
    fake = imports.sandbox.fakes[service]
    await imports.connect(service)

    def seed(first: int, count: int) -> None:
        items = []
        for n in range(first, first + count):
            artist, track, ts = track_seed(n)
            items.append({"artist": artist, "track": track, "timestamp": ts})
        fake.seed("scrobbles", items)

    def recent() -> list[RecordedRequest]:
        return [r for r in fake.requests("/") if r.query.get("method") == "user.getrecenttracks"]

    seed(0, ITEMS)
    first, took, rss = await run_import(imports, service, read_pacing=True)
    print(f"\n{service}: {ITEMS} scrobbles in {took:.1f} s, worker peak RSS {rss:.0f} MiB")
    assert first["items_added"] == ITEMS
    pages = recent()
    assert [int(r.query["page"]) for r in pages] == list(range(1, 51))
    assert {(r.query["limit"], r.query["to"], r.query["user"]) for r in pages} == {
        ("200", pages[0].query["to"], "sandbox")
    }
    assert all("from" not in r.query for r in pages)
    assert all(r.status == 200 for r in pages)
    no_429(fake.requests("/"))

    seed(NEW, NEW_ITEMS)
    second, _, _ = await run_import(imports, service, read_pacing=True)
    assert second["items_added"] == NEW_ITEMS
    later = recent()[len(pages) :]
    assert [int(r.query["page"]) for r in later] == list(range(1, new_pages + 1))
    until = int(datetime.fromisoformat(first["until"]).timestamp())
    assert {r.query["from"] for r in later} == {str(until - reach_back_s)}
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS + NEW_ITEMS
    no_429(fake.requests("/"))


async def test_listenbrainz(imports: ImportSetup) -> None:
    sb = imports.sandbox
    await imports.connect("listenbrainz")

    def seed(first: int, count: int) -> None:
        items = []
        for n in range(first, first + count):
            artist, track, ts = track_seed(n)
            meta = {"artist_name": artist, "track_name": track}
            items.append({"listened_at": ts, "track_metadata": meta})
        sb.listenbrainz.seed("listens", items)

    seed(0, ITEMS)
    first, took, rss = await run_import(imports, "listenbrainz", read_pacing=True)
    print(f"\nlistenbrainz: {ITEMS} listens in {took:.1f} s, worker peak RSS {rss:.0f} MiB")
    assert first["items_added"] == ITEMS
    pages = sb.listenbrainz.requests("/user/sandbox/listens")
    stamps = sorted((int(at(n).timestamp()) for n in range(ITEMS)), reverse=True)
    # Backwards by max_ts: each page below the oldest listen of the one before (+1, so
    # listens sharing that second are read again rather than skipped).
    wanted = [int(datetime.fromisoformat(first["until"]).timestamp()) + 1]
    # (each page after the first so starts with the last listen of the one before)
    wanted += [stamps[999 * k] + 1 for k in range(1, 11)]
    assert [int(r.query["max_ts"]) for r in pages] == wanted
    assert {r.query["count"] for r in pages} == {"1000"}
    assert all("min_ts" not in r.query for r in pages)
    no_429(sb.listenbrainz.requests("/"))

    seed(NEW, NEW_ITEMS)
    second, _, _ = await run_import(imports, "listenbrainz", read_pacing=True)
    assert second["items_added"] == NEW_ITEMS
    later = sb.listenbrainz.requests("/user/sandbox/listens")[len(pages) :]
    assert len(later) == 1
    until = int(datetime.fromisoformat(first["until"]).timestamp())
    assert later[0].query["min_ts"] == str(until - 1)
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS + NEW_ITEMS
    no_429(sb.listenbrainz.requests("/"))


async def test_maloja(imports: ImportSetup) -> None:
    """The user's own Maloja (the fake's address as the connection's server): its list paged
    by number between days; Maloja keeps one scrobble a second."""
    fake = imports.sandbox.fake("maloja", MalojaFake)
    await imports.connect("maloja")

    def seed(times: list[datetime]) -> None:
        fake.seed(
            "scrobbles",
            [
                {"time": int(t.timestamp()), "artist": track_seed(n)[0], "title": f"Track {n}"}
                for n, t in enumerate(times)
            ],
        )

    seed([at(n) for n in range(ITEMS)])
    first, took, rss = await run_import(imports, "maloja", read_pacing=True)
    print(f"\nmaloja: {ITEMS} scrobbles in {took:.1f} s, worker peak RSS {rss:.0f} MiB")
    assert first["items_added"] == ITEMS
    pages = fake.requests("/apis/mlj_1/scrobbles")
    # 20 full pages of 500, then the empty one that says it is over.
    assert [int(r.query["page"]) for r in pages] == list(range(21))
    until = datetime.fromisoformat(first["until"])
    assert {(r.query["perpage"], r.query["from"], r.query["to"]) for r in pages} == {
        ("500", "1970/1/1", maloja_day(until + timedelta(days=1)))
    }
    no_429(fake.requests("/"))

    # New scrobbles, one a second after the first import's end (no later than now).
    fresh = [until + timedelta(seconds=1 + k) for k in range(MALOJA_NEW)]
    # The second job ends when it starts: the clock must be past them by then.
    await asyncio.sleep(max(0.0, (fresh[-1] - datetime.now(UTC)).total_seconds() + 1.0))
    seed(fresh)
    second, _, _ = await run_import(imports, "maloja", read_pacing=True)
    assert second["items_added"] == MALOJA_NEW
    later = fake.requests("/apis/mlj_1/scrobbles")[len(pages) :]
    assert [(r.query["page"], r.query["from"]) for r in later] == [
        ("0", maloja_day(until - timedelta(days=1)))
    ]
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS + MALOJA_NEW


async def test_simkl(imports: ImportSetup) -> None:
    sb = imports.sandbox
    await imports.connect("simkl")

    def seed(first: int, count: int, shows: int) -> None:
        sb.simkl.seed(
            "history",
            [
                {
                    "type": "show",
                    "show": {
                        "title": f"Show {n % shows}",
                        "year": 2000 + n % shows % 20,
                        "ids": {"simkl": 500_000 + n % shows},
                    },
                    "watched_at": at(n).isoformat(),
                    "episode": {"season": 1, "number": 1 + n // shows},
                }
                for n in range(first, first + count)
            ],
        )

    seed(0, ITEMS, 100)
    first, took, rss = await run_import(imports, "simkl", read_pacing=True)
    print(f"\nsimkl: {ITEMS} episode plays in {took:.1f} s, worker peak RSS {rss:.0f} MiB")
    assert first["items_added"] == ITEMS
    calls = sb.simkl.requests("/sync/")
    assert [r.path for r in calls] == [
        "/sync/activities",
        "/sync/all-items/movies",
        "/sync/all-items/shows",
        "/sync/all-items/anime",
    ]
    assert all("date_from" not in r.query for r in calls)  # a first import reads it all
    no_429(sb.simkl.requests("/"))

    sb.simkl.seed(
        "history",
        [
            {
                "type": "show",
                "show": {"title": "Show 0", "year": 2000, "ids": {"simkl": 500_000}},
                "watched_at": at(NEW + n).isoformat(),
                "episode": {"season": 2, "number": n + 1},
            }
            for n in range(NEW_ITEMS)
        ],
    )
    second, _, _ = await run_import(imports, "simkl", read_pacing=True)
    assert second["items_added"] == NEW_ITEMS
    later = sb.simkl.requests("/sync/")[len(calls) :]
    assert later[0].path == "/sync/activities"
    assert {r.query.get("date_from") for r in later[1:]} == {
        datetime.fromisoformat(first["until"]).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{datetime.fromisoformat(first['until']).microsecond // 1000:03d}Z"
    }
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS + NEW_ITEMS
    no_429(sb.simkl.requests("/"))


async def test_anilist(imports: ImportSetup) -> None:
    sb = imports.sandbox
    await imports.connect("anilist")
    sb.anilist.seed(
        "entries",
        [
            {
                "mediaId": 100_000 + n,
                "status": "COMPLETED",
                "progress": 12,
                "scoreRaw": 80 if n % 10 == 0 else 0,
            }
            for n in range(ITEMS)
        ],
    )
    first, took, rss = await run_import(imports, "anilist", read_pacing=False)
    print(f"\nanilist: {ITEMS} list entries in {took:.1f} s, worker peak RSS {rss:.0f} MiB")
    ratings = ITEMS // 10
    assert first["items_added"] == ITEMS + ratings
    calls = sb.anilist.requests("/")
    chunks = [
        r.body["variables"].get("chunk") for r in calls if "MediaListCollection" in r.body["query"]
    ]
    assert chunks == list(range(1, 21))
    assert {
        r.body["variables"].get("perChunk") for r in calls if r.body["variables"].get("chunk")
    } == {500}
    no_429(calls)

    owner = sb.anilist.state.user_named("sandbox")
    assert owner is not None
    sb.anilist.seed(
        "entries",
        [{"mediaId": 900_000 + n, "status": "CURRENT", "progress": 3} for n in range(NEW_ITEMS)],
    )
    for n in range(NEW_ITEMS):  # changed after the first import's until, to the second
        entry = sb.anilist.state.entry_for(owner.id, 900_000 + n)
        assert entry is not None
        entry.updated_at = int(time.time()) + 1
    second, _, _ = await run_import(imports, "anilist", read_pacing=False)
    assert second["items_added"] == NEW_ITEMS
    later = sb.anilist.requests("/")[len(calls) :]
    later_chunks = [
        r.body["variables"].get("chunk") for r in later if "MediaListCollection" in r.body["query"]
    ]
    assert later_chunks == [1]  # newest first: the first chunk reaches back past since
    assert await imports.count("SELECT count(*) FROM imported_items") == ITEMS + ratings + NEW_ITEMS
    no_429(sb.anilist.requests("/"))
