"""External-id resolution through the real Deliverer, real Postgres and the sandbox fakes:
each service resolves a title + year by exact match only, episodes go out in the form the
service takes, anime with only a MyAnimeList id reaches AniList, unresolved items are a
readable ``failed`` row, answers are cached in Postgres for every replica, concurrent
replicas ask once, and a lookup that got no answer is retried like a write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from cryptography.fernet import Fernet

from scrobble_dispatcher import repository
from scrobble_dispatcher.decide import DeliveryPolicy
from scrobble_dispatcher.delivery import Deliverer
from scrobble_dispatcher.main import build_resolver
from scrobble_dispatcher.resolve.resolver import IdResolver
from scrobble_dispatcher.transport import ClientSet
from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import create_pool
from scrobble_shared.outbox import OutboxRelay
from scrobble_shared.settings import load_settings
from scrobble_shared.trackers.anilist.client import AniListClient
from scrobble_shared.trackers.http import AppCredentials, ServiceClient
from scrobble_shared.trackers.simkl.client import SimklClient
from scrobble_shared.trackers.trakt.client import TraktClient
from tests.integration.gateway.conftest import open_gateway
from tests.support.delivery import claim as claim_row
from tests.support.delivery import queue_work
from tests.support.infra import Infra
from tests.support.topics import Topics

pytestmark = pytest.mark.integration
CIPHER = TokenCipher(Fernet.generate_key().decode())
SERVICES = ("trakt", "simkl", "anilist")
HEAT_1995 = {"trakt": 1074, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949}


@dataclass
class Rig:
    pool: asyncpg.Pool
    sb: Sandbox
    relay: OutboxRelay
    clients: dict[str, ServiceClient]
    http: dict[str, Any]

    def deliverer(self) -> Deliverer:
        """One dispatcher replica: its own in-process cache, the shared Postgres one."""
        resolver = build_resolver(load_settings(environ=self.sb.env), list(SERVICES), self.pool)
        return Deliverer(
            self.pool,
            CIPHER,
            self.clients,
            self.http,
            self.relay,
            DeliveryPolicy(3, timedelta(seconds=1), "scrobble.", {}),
            resolver=resolver,
        )

    async def connection(self, service: str) -> uuid.UUID:
        """A connection of a user of its own, known to the fake by a token of its own."""
        user, token = uuid.uuid4(), f"token-{uuid.uuid4()}"
        fake = getattr(self.sb, service)
        fake.seed("users", [{"name": f"u-{user.hex[:12]}", "token": token}])
        connection_id: uuid.UUID = await self.pool.fetchval(
            "INSERT INTO connections (user_id, service, access_token_enc) "
            "VALUES ($1, $2, $3) RETURNING id",
            user,
            service,
            CIPHER.encrypt(token),
        )
        return connection_id

    async def queue(
        self, service: str, kind: str, content: dict[str, Any], connection: uuid.UUID | None = None
    ) -> repository.Claimed:
        connection = connection or await self.connection(service)
        user = await self.pool.fetchval("SELECT user_id FROM connections WHERE id = $1", connection)
        scrobble_id = await queue_work(
            self.pool, connection, user, service, kind, content, progress_percent=95.0
        )
        return await self.claim(scrobble_id)

    async def claim(self, scrobble_id: uuid.UUID) -> repository.Claimed:
        return await claim_row(self.pool, scrobble_id)

    async def row(self, scrobble_id: uuid.UUID) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "SELECT status, last_error, attempts FROM scrobbles WHERE id = $1", scrobble_id
        )
        assert row is not None
        return dict(row)


@pytest_asyncio.fixture(loop_scope="session")
async def rig(database_url: str, infra: Infra) -> AsyncIterator[Rig]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        sb.disable_rate_limits()  # pacing is the dispatcher's, tested elsewhere
        pool = await create_pool(database_url)
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        http = {s: ClientSet() for s in SERVICES}
        clients: dict[str, ServiceClient] = {
            "trakt": TraktClient(
                sb.env["TRAKT_API_URL"], AppCredentials(sb.env["TRAKT_CLIENT_ID"])
            ),
            "simkl": SimklClient(
                sb.env["SIMKL_API_URL"], AppCredentials(sb.env["SIMKL_CLIENT_ID"])
            ),
            "anilist": AniListClient(sb.env["ANILIST_API_URL"]),
        }
        try:
            yield Rig(pool, sb, OutboxRelay(pool, producer, infra.kafka_bootstrap), clients, http)
        finally:
            for client in http.values():
                await client.aclose()
            await producer.stop()
            await pool.close()


def movie(title: str, year: int | None = None, **ids: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "movie", "title": title}
    if year is not None:
        found["year"] = year
    if ids:
        found["external_ids"] = ids
    return found


def anime(show: dict[str, Any], number: int = 1) -> dict[str, Any]:
    return {"type": "anime_episode", "title": f"Episode {number}", "number": number, "show": show}


FRIEREN_EN = {"title": "Frieren: Beyond Journey's End", "year": 2023}


async def test_title_and_year_resolve_by_exact_match_at_each_service(rig: Rig) -> None:
    deliver = rig.deliverer()
    trakt = await rig.queue("trakt", "scrobble", movie("Heat", 1995))
    simkl = await rig.queue("simkl", "scrobble", movie("heat", 1995))
    anilist = await rig.queue("anilist", "watched", anime(FRIEREN_EN, number=3))
    for claimed in (trakt, simkl, anilist):
        assert await deliver.deliver(claimed) == "done", await rig.row(claimed.id)

    [search] = rig.sb.trakt.requests("/search/movie")
    assert (search.query["query"], search.query["years"]) == ("Heat", "1995")
    [stop] = rig.sb.trakt.requests("/scrobble/stop")
    assert stop.body["movie"] == {"title": "Heat", "year": 1995, "ids": HEAT_1995}
    [simkl_stop] = rig.sb.simkl.requests("/scrobble/stop")
    assert simkl_stop.body["movie"] == {"title": "heat", "year": 1995, "ids": {"simkl": 53452}}
    save = [r for r in rig.sb.anilist.requests("/") if "SaveProgress" in r.body["query"]]
    assert [r.body["variables"]["mediaId"] for r in save] == [154587]
    cached = await rig.pool.fetch(
        "SELECT service, lookup_key, state, ids FROM id_lookups ORDER BY service"
    )
    assert [(r["service"], r["lookup_key"], r["state"]) for r in cached] == [
        ("anilist", "search:anime:frieren beyond journey s end:2023", "found"),
        ("simkl", "search:movie:heat:1995", "found"),
        ("trakt", "search:movie:heat:1995", "found"),
    ]


@pytest.mark.parametrize(
    ("service", "kind", "content", "reason"),
    [
        ("trakt", "scrobble", movie("Heat", 1994), 'not found at Trakt: movie "Heat" (1994)'),
        ("trakt", "scrobble", movie("Heat Wave", 1995), "no exact title/year match"),
        ("simkl", "scrobble", movie("Heat", 1994), 'not found at Simkl: movie "Heat" (1994)'),
        ("simkl", "scrobble", movie("Inception Extended", 2010), "no exact title/year match"),
        ("anilist", "watched", anime({"title": "Frieren", "year": 2023}), "not found at AniList"),
        ("anilist", "watched", anime({**FRIEREN_EN, "year": 2022}), "exact title/year"),
        ("trakt", "scrobble", movie("Heat"), "no year to match its title by"),
    ],
)
async def test_near_matches_are_failed_with_a_readable_reason(
    rig: Rig, service: str, kind: str, content: dict[str, Any], reason: str
) -> None:
    rig.sb.reset()
    rig.sb.disable_rate_limits()
    claimed = await rig.queue(service, kind, content)
    assert await rig.deliverer().deliver(claimed) == "unresolved"
    row = await rig.row(claimed.id)
    assert row["status"] == "failed"
    assert reason in row["last_error"], row
    assert row["last_error"].startswith("not found at "), row
    fake = getattr(rig.sb, service)
    writes = [r for r in fake.requests("/") if r.method == "POST" and "Media(" not in str(r.body)]
    assert writes == []  # nothing was sent in its name


async def test_episodes_go_out_as_show_ids_with_season_and_number(rig: Rig) -> None:
    rig.sb.reset()
    rig.sb.disable_rate_limits()
    deliver = rig.deliverer()
    episode = {
        "type": "episode",
        "title": "Half Loop",
        "season": 1,
        "number": 2,
        "show": {"title": "Severance", "external_ids": {"tvdb": 371980}},
    }
    by_title = {**episode, "show": {"title": "Breaking Bad", "year": 2008}, "number": 1}
    for service in ("trakt", "simkl"):
        assert await deliver.deliver(await rig.queue(service, "scrobble", episode)) == "done"
        assert await deliver.deliver(await rig.queue(service, "scrobble", by_title)) == "done"
    trakt = [r.body for r in rig.sb.trakt.requests("/scrobble/stop")]
    assert trakt[0]["show"] == {"title": "Severance", "ids": {"tvdb": 371980}}
    assert trakt[0]["episode"] == {"season": 1, "number": 2}
    assert trakt[1]["show"]["ids"]["trakt"] == 1388
    assert trakt[1]["episode"] == {"season": 1, "number": 1}
    simkl = [r.body for r in rig.sb.simkl.requests("/scrobble/stop")]
    assert simkl[0]["show"] == {"title": "Severance", "ids": {"tvdb": 371980}}
    assert simkl[0]["episode"] == {"season": 1, "number": 2}
    assert simkl[1]["show"]["ids"] == {"simkl": 11121}
    # Show ids needed no lookup; the titled show one search each.
    assert [r.path for r in rig.sb.trakt.requests("/search/")] == ["/search/show"]
    assert [r.path for r in rig.sb.simkl.requests("/search/")] == ["/search/tv"]


async def test_anime_with_only_a_mal_id_reaches_anilist_and_is_looked_up_once(rig: Rig) -> None:
    rig.sb.reset()
    rig.sb.disable_rate_limits()
    show = {"title": "Frieren", "external_ids": {"mal": 52991}}
    first, second = rig.deliverer(), rig.deliverer()  # two replicas
    assert await first.deliver(await rig.queue("anilist", "watched", anime(show, 1))) == "done"
    assert await second.deliver(await rig.queue("anilist", "watched", anime(show, 2))) == "done"
    queries = [r.body["query"] for r in rig.sb.anilist.requests("/")]
    assert sum("MediaByMalId" in q for q in queries) == 1
    saves = [r for r in rig.sb.anilist.requests("/") if "SaveProgress" in r.body["query"]]
    assert [r.body["variables"]["mediaId"] for r in saves] == [154587, 154587]


async def test_concurrent_replicas_ask_the_service_once(rig: Rig) -> None:
    rig.sb.reset()
    rig.sb.disable_rate_limits()
    replicas = [rig.deliverer(), rig.deliverer()]
    found = movie("Inception", 2010)
    missing = movie("Inception", 2011)
    claims = [await rig.queue("trakt", "scrobble", c) for c in [found] * 8 + [missing] * 8]
    outcomes = await asyncio.gather(
        *(replicas[i % 2].deliver(claimed) for i, claimed in enumerate(claims))
    )
    assert sorted(outcomes) == ["done"] * 8 + ["unresolved"] * 8
    searches = rig.sb.trakt.requests("/search/movie")
    assert sorted(r.query["years"] for r in searches) == ["2010", "2011"]
    rows = await rig.pool.fetch("SELECT state, reason FROM id_lookups WHERE service = 'trakt'")
    assert sorted(r["state"] for r in rows) == ["found", "not_found"]


async def test_a_lookup_without_an_answer_is_retried_and_asks_again(rig: Rig) -> None:
    rig.sb.reset()
    rig.sb.disable_rate_limits()
    rig.sb.simkl.faults.error(status=503, count=1, path_prefix="/search/")
    deliver = rig.deliverer()
    claimed = await rig.queue("simkl", "scrobble", movie("The Matrix Lookup", 1999))
    assert await deliver.deliver(claimed) == "retry"
    row = await rig.row(claimed.id)
    assert row["status"] == "retrying"
    assert "503" in row["last_error"]
    # The claim was given up: nothing cached, the next try asks again.
    assert await rig.pool.fetchval("SELECT count(*) FROM id_lookups WHERE service = 'simkl'") == 0
    await rig.pool.execute("UPDATE scrobbles SET next_attempt_at = now() WHERE id = $1", claimed.id)
    again = await rig.claim(claimed.id)
    assert await deliver.deliver(again) == "unresolved"
    assert [r.status for r in rig.sb.simkl.requests("/search/movie")] == [503, 200]
    assert (await rig.row(claimed.id))["status"] == "failed"


async def test_music_is_sent_by_name_without_lookups(rig: Rig) -> None:
    # Last.fm and ListenBrainz have no resolver: a track without MBIDs goes as it is.
    resolver = IdResolver(rig.pool, {})
    from scrobble_shared.trackers.http import UserCredentials
    from scrobble_shared.work_message import ScrobbleWork

    work = ScrobbleWork.from_message(
        {
            "scrobble_id": str(uuid.uuid4()),
            "connection_id": str(uuid.uuid4()),
            "user_id": str(uuid.uuid4()),
            "service": "lastfm",
            "kind": "scrobble",
            "dedupe_key": "k",
            "occurred_at": datetime.now(UTC).isoformat(),
            "content": {
                "type": "track",
                "id": str(uuid.uuid4()),
                "title": "Windowlicker",
                "artists": ["Aphex Twin"],
            },
        }
    )

    async def no_calls(*_: Any) -> Any:
        raise AssertionError("no lookup for music")

    assert await resolver.resolve(work, work.connection_id, UserCredentials("t"), no_calls) is work


async def test_not_found_is_visible_with_its_reason_in_history(
    rig: Rig, infra: Infra, database_url: str, topics: Topics
) -> None:
    """Issue 9, point 3: the unresolved outcome, as the user sees it through the gateway."""
    rig.sb.reset()
    rig.sb.disable_rate_limits()
    claimed = await rig.queue("trakt", "scrobble", movie("Heat Extended Cut", 1995))
    assert await rig.deliverer().deliver(claimed) == "unresolved"
    user = await rig.pool.fetchval("SELECT user_id FROM scrobbles WHERE id = $1", claimed.id)
    gateway = await open_gateway(infra, database_url, topics)
    try:
        answer = await gateway.client.get(
            "/api/v1/scrobble/history", params={"status": "failed"}, headers=gateway.auth(user)
        )
        assert answer.status == 200, await answer.text()
        (item,) = (await answer.json())["items"]
    finally:
        await gateway.client.close()
    assert item["id"] == str(claimed.id)
    assert item["status"] == "failed"
    assert item["last_error"].startswith("not found at Trakt: "), item
    assert "no exact title/year match" in item["last_error"], item
