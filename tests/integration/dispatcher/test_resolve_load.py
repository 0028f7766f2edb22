"""Lookups are made once per item and service, not once per play: 1,000 plays of 50
distinct items that carry no id their service takes go through ingest and two dispatcher
replicas (real processes, real Kafka and Postgres) to the sandbox fakes, whose request
logs count the lookups.

- movies with only a title and a year, to Trakt (which knows all 50) and to Simkl (which
  knows one): Trakt gets every play, by ids it found itself; Simkl gets the plays of the
  one it knows, and every other play is ``failed`` with the reason in history;
- anime episodes with only a MyAnimeList id, to AniList (which knows 45 of the 50).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg
import pytest

from scrobble_sandbox import Sandbox
from scrobble_shared.crypto import TokenCipher
from tests.integration.dispatcher.test_delivery import KEY, dispatcher, wait_until_settled
from tests.support.databases import insert_connection
from tests.support.events import event
from tests.support.ingest import IngestSetup
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.integration

ITEMS = 50
PLAYS = 1000
VIDEO_USERS = 100  # 10 plays each, of 10 different movies
ANIME_USERS = 200  # 5 plays each, of 5 different anime
ANILIST_KNOWN = 45
MAL_BASE, ANILIST_BASE, TRAKT_BASE = 800_000, 700_000, 900_000


def film(n: int) -> dict[str, Any]:
    return {"title": f"Resolve Film {n}", "year": 1960 + n, "external_ids": None}


def anime(n: int) -> dict[str, Any]:
    return {
        "title": "Episode 1",
        "number": 1,
        "show": {"title": f"Resolve Anime {n}", "external_ids": {"mal": MAL_BASE + n}},
    }


async def connect(dsn: str, user: uuid.UUID, service: str, token: str) -> None:
    await insert_connection(dsn, TokenCipher(KEY), user, service, token)


def seed_catalogues(sb: Sandbox) -> None:
    sb.trakt.seed(
        "catalog",
        [
            {
                "type": "movie",
                "title": f"Resolve Film {n}",
                "year": 1960 + n,
                "ids": {"trakt": TRAKT_BASE + n, "slug": f"resolve-film-{n}", "tmdb": 60_000 + n},
            }
            for n in range(ITEMS)
        ],
    )
    sb.simkl.seed(
        "catalog", [{"type": "movie", "title": "Resolve Film 0", "year": 1960, "ids": {"simkl": 1}}]
    )
    sb.anilist.seed(
        "media",
        [
            {"id": ANILIST_BASE + n, "idMal": MAL_BASE + n, "title": f"Resolve Anime {n}"}
            for n in range(ANILIST_KNOWN)
        ],
    )


async def failed_reasons(dsn: str) -> dict[str, Counter[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT service, last_error FROM scrobbles WHERE status = 'failed' ORDER BY service"
        )
    finally:
        await conn.close()
    found: dict[str, Counter[str]] = {}
    for row in rows:
        found.setdefault(row["service"], Counter())[row["last_error"]] += 1
    return found


async def test_a_thousand_plays_of_fifty_items_are_looked_up_fifty_times(
    ingest_setup: IngestSetup,
) -> None:
    from scrobble_sandbox import running_sandbox

    setup = ingest_setup
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        # The fakes' own limits are off: under this load the in-process fakes see requests
        # with the jitter of a busy event loop. Pacing and the limits are tested in
        # test_replicas_and_crash; what counts here is how often each fake is asked.
        sb.disable_rate_limits()
        seed_catalogues(sb)
        events = []
        video = [uuid.uuid4() for _ in range(VIDEO_USERS)]
        for i, user in enumerate(video):
            for service in ("trakt", "simkl"):
                token = f"{service}-{i}"
                getattr(sb, service).seed("users", [{"name": f"{service[0]}{i}", "token": token}])
                await connect(setup.database_url, user, service, token)
        fans = [uuid.uuid4() for _ in range(ANIME_USERS)]
        for i, user in enumerate(fans):
            sb.anilist.seed("users", [{"name": f"fan{i}", "token": f"anilist-{i}"}])
            await connect(setup.database_url, user, "anilist", f"anilist-{i}")
        for j in range(PLAYS):
            user, k = video[j % VIDEO_USERS], j // VIDEO_USERS
            n = (j % VIDEO_USERS + 7 * k) % ITEMS  # each user: 10 different movies
            events.append(
                event("stop", 9_000_000, at_s=j, user=str(user), session=f"m{j}", content=film(n))
            )
            fan, k = fans[j % ANIME_USERS], j // ANIME_USERS
            n = (j % ANIME_USERS + 3 * k) % ITEMS  # each fan: 5 different anime
            events.append(
                event(
                    "stop", 1_400_000, content_type="anime_episode", at_s=j, user=str(fan),
                    session=f"a{j}", content=anime(n),
                )
            )  # fmt: skip
        await setup.publish_plays(events)
        ingest = setup.process()
        first = dispatcher(setup, sb)
        second = ServiceProcess("dispatcher", first.env, setup.tmp / "dispatcher-2.log")
        await asyncio.gather(first.start(), second.start())
        await ingest.start()
        started = asyncio.get_running_loop().time()
        try:
            found = await wait_until_settled(setup.database_url, deadline_s=240)
            settled = asyncio.get_running_loop().time() - started
        finally:
            codes = await asyncio.gather(first.stop(), second.stop(), ingest.stop())
        logs = first.log_tail() + "\n---\n" + second.log_tail()
        assert list(codes) == [0, 0, 0], logs

        statuses = {key: Counter(value) for key, value in found.items()}
        simkl_known = PLAYS // ITEMS  # the plays of "Resolve Film 0"
        anime_unknown = PLAYS // ITEMS * (ITEMS - ANILIST_KNOWN)
        assert statuses == {
            ("trakt", "scrobble"): Counter({"sent": PLAYS}),
            ("simkl", "scrobble"): Counter({"sent": simkl_known, "failed": PLAYS - simkl_known}),
            ("anilist", "watched"): Counter(
                {"sent": PLAYS - anime_unknown, "failed": anime_unknown}
            ),
        }, logs

        # At most one lookup per item and service: here exactly one, every item needing one.
        trakt = sb.trakt.requests("/search/movie")
        simkl = sb.simkl.requests("/search/movie")
        anilist = [r for r in sb.anilist.requests("/") if "MediaByMalId" in r.body["query"]]
        assert len(trakt) == ITEMS, Counter(r.query["query"] for r in trakt)
        assert len(simkl) == ITEMS, Counter(r.query["q"] for r in simkl)
        assert len(anilist) == ITEMS, Counter(r.body["variables"]["idMal"] for r in anilist)
        assert {r.query["query"] for r in trakt} == {f"Resolve Film {n}" for n in range(ITEMS)}
        assert {r.body["variables"]["idMal"] for r in anilist} == {
            MAL_BASE + n for n in range(ITEMS)
        }
        assert [r for r in trakt + simkl + anilist if r.status != 200 and r.status != 404] == []

        # Every play went out under the ids the lookup found.
        stops = sb.trakt.requests("/scrobble/stop")
        assert Counter(r.status for r in stops) == {201: PLAYS}
        assert all(r.body["movie"]["ids"]["trakt"] >= TRAKT_BASE for r in stops)
        simkl_stops = sb.simkl.requests("/scrobble/stop")
        assert [r.body["movie"]["ids"] for r in simkl_stops] == [{"simkl": 1}] * simkl_known
        assert Counter(r.status for r in simkl_stops) == {201: simkl_known}
        saves = [r for r in sb.anilist.requests("/") if "SaveProgress" in r.body["query"]]
        assert Counter(r.status for r in saves) == {200: PLAYS - anime_unknown}
        assert all(r.body["variables"]["mediaId"] >= ANILIST_BASE for r in saves)

        # The unresolved plays are failed with a reason a person can read.
        reasons = await failed_reasons(setup.database_url)
        assert set(reasons) == {"simkl", "anilist"}
        assert sum(reasons["simkl"].values()) == PLAYS - simkl_known
        assert (
            reasons["simkl"][
                'not found at Simkl: movie "Resolve Film 7" (1967): no id Simkl accepts and no '
                "exact title/year match"
            ]
            == PLAYS // ITEMS
        )
        assert all(r.startswith("not found at Simkl: movie ") for r in reasons["simkl"])
        assert all(r.startswith("not found at AniList: ") for r in reasons["anilist"])
        assert len(reasons["anilist"]) == ITEMS - ANILIST_KNOWN
        print(
            f"\nlookups trakt {len(trakt)} simkl {len(simkl)} anilist {len(anilist)} for "
            f"{PLAYS} plays each; failed {dict((s, sum(c.values())) for s, c in reasons.items())}; "
            f"settled in {settled:.1f} s"
        )
