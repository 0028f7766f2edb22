"""Acceptance 4 and 5, with the import worker inside ``scrobble dispatcher`` (as deployed),
which also delivers the work the imports make:

- plays imported from Trakt reach the user's Simkl connection (sync_watch_status on) once,
  with their original watched_at, except a play that already went out to Simkl from a
  playback event; a rating imported from Simkl reaches Trakt's /sync/ratings; nothing goes
  back to where it came from, and importing again sends nothing twice;
- imports of a few pages from all five services at once, at the dispatcher's real pacing
  and the fakes' real limits, get no 429.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from scrobble_sandbox.core.recording import RecordedRequest
from tests.integration.imports.support import USER, ImportSetup
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.integration

T = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)


def movie(n: int) -> dict[str, Any]:
    return {
        "title": f"Film {n}",
        "year": 2000 + n,
        "ids": {"tmdb": 70_000 + n, "imdb": f"tt70000{n}"},
    }


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def until_true(check: Any, what: str, deadline_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not check():
        if loop.time() > end:
            raise AssertionError(f"not in {deadline_s} s: {what}")
        await asyncio.sleep(0.2)


def history_adds(records: list[RecordedRequest]) -> list[tuple[int, datetime]]:
    """(tmdb id, watched_at) of every movie a /sync/history POST added."""
    return [
        (m["ids"]["tmdb"], instant(m["watched_at"]))
        for r in records
        if r.status in (200, 201)
        for m in r.body.get("movies", [])
    ]


async def sent_from_ingest(
    imports: ImportSetup, connection: uuid.UUID, n: int, at: datetime
) -> None:
    """A play of movie n that ingest sent to the connection (a scrobble/stop at ``at``)."""
    content: dict[str, Any] = {
        "type": "movie",
        "id": str(uuid.uuid4()),
        "title": f"Film {n}",
        "external_ids": {"tmdb": 70_000 + n},
    }
    request = {"kind": "scrobble", "content": content}
    conn = await asyncpg.connect(imports.gateway.database_url)
    try:
        await conn.execute(
            "INSERT INTO scrobbles (connection_id, user_id, service, dedupe_key, kind, "
            "content_type, content_id, request, occurred_at, status, sent_at) "
            "VALUES ($1, $2, 'simkl', $3, 'scrobble', 'movie', $4, $5, $6, 'sent', now())",
            connection,
            USER,
            f"play:{uuid.uuid4()}:watched",
            uuid.UUID(content["id"]),
            json.dumps(request),
            at,
        )
    finally:
        await conn.close()


async def test_two_way_sync_between_trakt_and_simkl(imports: ImportSetup) -> None:
    sb = imports.sandbox
    await imports.connect("trakt", sync_watch_status=True, sync_ratings=True)
    simkl = await imports.connect("simkl", sync_watch_status=True, sync_ratings=True)
    plays = {1: T, 2: T + timedelta(days=1), 3: T + timedelta(days=2)}
    sb.trakt.seed(
        "history",
        [{"type": "movie", "movie": movie(n), "watched_at": iso(w)} for n, w in plays.items()],
    )
    # Film 3 went out to Simkl from a playback event (Trakt recorded it two minutes later).
    await sent_from_ingest(imports, simkl, 3, plays[3] - timedelta(minutes=2))
    watched_4, rated_4 = T + timedelta(days=5), T + timedelta(days=5, hours=1)
    sb.simkl.seed("history", [{"type": "movie", "movie": movie(4), "watched_at": iso(watched_4)}])
    sb.simkl.seed(
        "ratings", [{"type": "movie", "movie": movie(4), "rating": 9, "rated_at": iso(rated_4)}]
    )

    dispatcher = ServiceProcess("dispatcher", imports.env, imports.tmp / "dispatcher.log")
    await dispatcher.start()
    try:
        job = await imports.start("trakt")
        assert (await imports.wait_job(job["id"], dispatcher))["state"] == "done"

        def simkl_adds() -> list[tuple[int, datetime]]:
            return history_adds(sb.simkl.requests("/sync/history", method="POST"))

        await until_true(lambda: len(simkl_adds()) >= 2, "Simkl history adds", 60)

        job = await imports.start("simkl")
        assert (await imports.wait_job(job["id"], dispatcher))["state"] == "done"

        def trakt_ratings() -> list[RecordedRequest]:
            return sb.trakt.requests("/sync/ratings", method="POST")

        await until_true(lambda: len(trakt_ratings()) >= 1, "Trakt rating", 60)

        def trakt_adds() -> list[tuple[int, datetime]]:
            return history_adds(sb.trakt.requests("/sync/history", method="POST"))

        await until_true(lambda: len(trakt_adds()) >= 1, "Trakt history add of film 4", 60)

        # Everything again, in full: nothing goes anywhere twice.
        for service in ("trakt", "simkl"):
            job = await imports.start(service, full=True)
            again = await imports.wait_job(job["id"], dispatcher)
            assert again["state"] == "done"
        conn = await asyncpg.connect(imports.gateway.database_url)
        try:
            busy = (
                "SELECT count(*) FROM scrobbles WHERE status IN ('queued', 'sending', 'retrying')"
            )
            loop = asyncio.get_running_loop()
            end = loop.time() + 30
            while True:
                if not await conn.fetchval(busy) or loop.time() > end:
                    break
                await asyncio.sleep(0.2)
            statuses = await conn.fetch(
                "SELECT service, kind, status FROM scrobbles ORDER BY service, kind"
            )
        finally:
            await conn.close()
    finally:
        assert await dispatcher.stop() == 0
    assert sorted(simkl_adds()) == [(70_001, plays[1]), (70_002, plays[2])]
    ratings = [m for r in trakt_ratings() for m in r.body.get("movies", [])]
    assert [(m["ids"]["tmdb"], m["rating"], m["rated_at"]) for m in ratings] == [
        (70_004, 9, iso(rated_4))
    ]
    assert sorted(trakt_adds()) == [(70_004, watched_4)]
    assert [tuple(r) for r in statuses] == [
        ("simkl", "scrobble", "sent"),  # the play from ingest
        ("simkl", "watched", "sent"),
        ("simkl", "watched", "sent"),
        ("trakt", "rating", "sent"),
        ("trakt", "watched", "sent"),
    ]
    for fake in (sb.trakt, sb.simkl):
        assert [r for r in fake.requests("/") if r.status == 429] == []


async def test_five_services_at_real_pacing_get_no_429(imports: ImportSetup) -> None:
    sb = imports.sandbox
    for service in ("trakt", "lastfm", "listenbrainz", "simkl", "anilist"):
        await imports.connect(service)
    base = T - timedelta(days=400)
    sb.trakt.seed(
        "history",
        [
            {"type": "movie", "movie": movie(n % 50), "watched_at": iso(base + timedelta(hours=n))}
            for n in range(350)
        ],
    )
    sb.lastfm.seed(
        "scrobbles",
        [
            {
                "artist": f"A{n % 40}",
                "track": f"T{n}",
                "timestamp": int((base + timedelta(hours=n)).timestamp()),
            }
            for n in range(700)
        ],
    )
    sb.listenbrainz.seed(
        "listens",
        [
            {
                "listened_at": int((base + timedelta(hours=n)).timestamp()),
                "track_metadata": {"artist_name": f"A{n % 40}", "track_name": f"T{n}"},
            }
            for n in range(3500)
        ],
    )
    sb.simkl.seed(
        "history",
        [
            {
                "type": "show",
                "show": {"title": f"S{n % 10}", "year": 2010, "ids": {"simkl": 900 + n % 10}},
                "watched_at": iso(base + timedelta(hours=n)),
                "episode": {"season": 1, "number": 1 + n // 10},
            }
            for n in range(300)
        ],
    )
    sb.anilist.seed("entries", [{"mediaId": 300_000 + n, "progress": 1} for n in range(1200)])
    expected = {"trakt": 350, "lastfm": 700, "listenbrainz": 3500, "simkl": 300, "anilist": 1200}

    dispatcher = ServiceProcess("dispatcher", imports.env, imports.tmp / "dispatcher.log")
    await dispatcher.start()
    try:
        jobs = {s: await imports.start(s) for s in expected}
        done = {
            s: await imports.wait_job(j["id"], dispatcher, deadline_s=120) for s, j in jobs.items()
        }
        metrics = await dispatcher.metrics()
    finally:
        assert await dispatcher.stop() == 0
    assert {s: (j["state"], j["items_added"]) for s, j in done.items()} == {
        s: ("done", n) for s, n in expected.items()
    }
    assert {s: j["pages_done"] for s, j in done.items()} == {
        "trakt": 5,
        "lastfm": 4,
        "listenbrainz": 4,
        "simkl": 4,
        "anilist": 4,
    }
    for fake in (sb.trakt, sb.lastfm, sb.listenbrainz, sb.simkl, sb.anilist):
        assert [r.path for r in fake.requests("/") if r.status == 429] == [], fake.name
        assert [r for r in fake.requests("/") if r.body and r.body.get("error") == 29] == []
    assert 'scrobble_import_pages_total{service="trakt"} 5.0' in metrics
    assert 'scrobble_import_items_total{outcome="added",service="lastfm"} 700.0' in metrics
