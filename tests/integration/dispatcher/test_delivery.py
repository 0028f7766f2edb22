"""The dispatcher end to end: playback events in through ingest, calls out to the sandbox
fakes, outcomes in Postgres. Both services run as processes, as an operator runs them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_sandbox.librefm.fake import LibrefmFake
from scrobble_sandbox.maloja.fake import MalojaFake
from scrobble_shared.crypto import TokenCipher
from tests.support.events import USER, event
from tests.support.ingest import IngestSetup
from tests.support.kafka import collect
from tests.support.services import ServiceProcess, run_cli

pytestmark = pytest.mark.integration
KEY = Fernet.generate_key().decode()
MAL_ID, ANILIST_ID = 52991, 154587
ALL = ("trakt", "simkl", "anilist", "lastfm", "librefm", "listenbrainz")


def librefm_fake(sb: Sandbox) -> LibrefmFake:
    return sb.fake("librefm", LibrefmFake)


@pytest_asyncio.fixture(loop_scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        sb.anilist.seed("media", [{"id": ANILIST_ID, "idMal": MAL_ID, "title": "Frieren"}])
        yield sb


async def connect_with_token(
    setup: IngestSetup, service: str, token: str, api_url: str | None = None
) -> uuid.UUID:
    """A connection with ``token`` (and, for a tracker each user runs, its server)."""
    conn = await asyncpg.connect(setup.database_url)
    try:
        connection_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO connections (user_id, service, access_token_enc, sync_ratings, api_url) "
            "VALUES ($1, $2, $3, true, $4) RETURNING id",
            uuid.UUID(USER),
            service,
            TokenCipher(KEY).encrypt(token),
            api_url,
        )
        return connection_id
    finally:
        await conn.close()


def dispatcher(setup: IngestSetup, sb: Sandbox) -> ServiceProcess:
    env = {
        **setup.env,
        **sb.env,
        "TOKEN_ENCRYPTION_KEY": KEY,
        "DISPATCHER_GROUP_ID": setup.env["INGEST_GROUP_ID"] + "-dispatch",
        "SCROBBLE_RETRY_BACKOFF": "1s",
        "SCROBBLE_MAX_RETRIES": "3",
    }
    return ServiceProcess("dispatcher", env, setup.tmp / "dispatcher.log")


async def statuses(dsn: str) -> dict[tuple[str, str], list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT service, kind, status FROM scrobbles ORDER BY created_at")
    finally:
        await conn.close()
    found: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        found.setdefault((row["service"], row["kind"]), []).append(row["status"])
    return found


async def sync_status(dsn: str) -> dict[str, tuple[str, Any]]:
    """Each connection's last_sync_status and last_sync_at, by service."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT service, last_sync_status, last_sync_at FROM connections")
    finally:
        await conn.close()
    return {r["service"]: (r["last_sync_status"], r["last_sync_at"]) for r in rows}


async def wait_until_settled(dsn: str, deadline_s: float = 60) -> dict[tuple[str, str], list[str]]:
    """Poll until no row is queued, sending or retrying (or the deadline passes)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while True:
        found = await statuses(dsn)
        busy = [s for ss in found.values() for s in ss if s in ("queued", "sending", "retrying")]
        if (found and not busy) or loop.time() > until:
            return found
        await asyncio.sleep(0.3)


async def test_every_service_gets_its_calls(ingest_setup: IngestSetup, sandbox: Sandbox) -> None:
    setup, sb = ingest_setup, sandbox
    token = sb.env["SANDBOX_TOKEN"]
    for service in ALL:
        await connect_with_token(setup, service, token)
    # The user's own Maloja: the fake's address, as the connection's server.
    await connect_with_token(setup, "maloja", token, sb.env["MALOJA_API_URL"])
    events = [
        event("start", 0, at_s=0),
        event("stop", 9_500_000, at_s=60),
        event("start", 0, content_type="anime_episode", at_s=100),
        event("stop", 1_400_000, content_type="anime_episode", at_s=200),
        event("start", 0, content_type="track", at_s=300),
        event("progress", 200_000, content_type="track", at_s=500),
        event("rate", content_type="track", rating=9, at_s=600),
    ]
    await setup.publish_plays(events)
    dispatch = dispatcher(setup, sb)
    async with setup.running(setup.process(), dispatch):
        found = await wait_until_settled(setup.database_url)
    assert found == {
        ("trakt", "start"): ["sent"],
        ("trakt", "scrobble"): ["sent"],
        ("simkl", "start"): ["sent", "sent"],
        ("simkl", "scrobble"): ["sent", "sent"],
        ("anilist", "watched"): ["sent"],
        # All published before the dispatcher started: by the time the now-playing work
        # is read the play is over (its scrobble follows), so it is skipped, not sent.
        ("lastfm", "now_playing"): ["failed"],
        ("lastfm", "scrobble"): ["sent"],
        ("lastfm", "rating"): ["sent"],
        ("librefm", "now_playing"): ["failed"],
        ("librefm", "scrobble"): ["sent"],
        ("librefm", "rating"): ["sent"],
        ("listenbrainz", "now_playing"): ["failed"],
        ("listenbrainz", "scrobble"): ["sent"],
        ("listenbrainz", "rating"): ["sent"],
        # Maloja keeps no now playing and no ratings: the listen alone.
        ("maloja", "scrobble"): ["sent"],
    }, dispatch.log_tail()
    # Each connection's card can say when its deliveries last worked (issue 20, point 5).
    synced = await sync_status(setup.database_url)
    assert {service: status for service, (status, _) in synced.items()} == {
        service: "ok" for service in (*ALL, "maloja")
    }
    assert all(at is not None for _, at in synced.values())
    assert [r.status for r in sb.trakt.requests("/scrobble/")] == [201, 201]
    assert sb.trakt.requests("/scrobble/stop")[0].body["progress"] == 95.0
    assert len(sb.simkl.requests("/scrobble/stop")) == 2
    lookups_and_saves = sb.anilist.requests("/")
    assert all(r.status == 200 for r in lookups_and_saves)
    entries = sb.anilist.snapshot()
    assert str(ANILIST_ID) in str(entries)
    methods = [r.body.get("method") for r in sb.lastfm.requests("/")]
    assert methods == ["track.scrobble", "track.love"]
    # Libre.fm's own fake, signed with its own key: the love found the track just scrobbled.
    librefm = [(r.body.get("method"), r.status) for r in librefm_fake(sb).requests("/")]
    assert librefm == [("track.scrobble", 200), ("track.love", 200)]
    assert librefm_fake(sb).snapshot()["loves"][0]["track"] == "Windowlicker"
    listen_types = [r.body.get("listen_type") for r in sb.listenbrainz.requests("/submit-listens")]
    assert listen_types == ["single"]
    assert len(sb.listenbrainz.requests("/feedback/recording-feedback")) == 1
    maloja = sb.fake("maloja", MalojaFake)
    [listen] = maloja.requests("/apis/listenbrainz/1/")
    assert (listen.path, listen.body["listen_type"], listen.status) == (
        "/apis/listenbrainz/1/submit-listens",
        "single",
        200,
    )
    [kept] = maloja.snapshot()["scrobbles"]
    assert kept["track"]["artists"] == ["Aphex Twin"]


async def test_retries_dead_letters_and_replay(ingest_setup: IngestSetup, sandbox: Sandbox) -> None:
    setup, sb = ingest_setup, sandbox
    token = sb.env["SANDBOX_TOKEN"]
    await connect_with_token(setup, "trakt", token)
    lastfm = await connect_with_token(setup, "lastfm", token)
    # Trakt: 503 twice, then it answers; Last.fm: the artist is filtered, refused for good.
    sb.trakt.faults.error(status=503, count=2, path_prefix="/scrobble/stop")
    sb.lastfm.seed("filtered_artists", [{"name": "Aphex Twin"}])
    events = [
        event("stop", 9_500_000, at_s=0),
        event("progress", 200_000, content_type="track", at_s=300),
    ]
    await setup.publish_plays(events)
    ingest, dispatch = setup.process(), dispatcher(setup, sb)
    await ingest.start()
    await dispatch.start()
    try:
        found = await wait_until_settled(setup.database_url)
        assert found == {("trakt", "scrobble"): ["sent"], ("lastfm", "scrobble"): ["dead"]}
        assert [r.status for r in sb.trakt.requests("/scrobble/stop")] == [503, 503, 201]
        dead_letters = await collect(
            setup.infra.kafka_bootstrap, [setup.env["SCROBBLE_TOPIC_PREFIX"] + "lastfm.dlq"], 1
        )
        assert len(dead_letters) == 1
        assert dead_letters[0].json()["connection_id"] == str(lastfm)
        assert dead_letters[0].headers["error.reason"]
        listed = await run_cli("dlq", "list", "--service", "lastfm", env=dispatch.env)
        assert "lastfm" in listed
        assert "artist" in listed.lower()  # the readable reason
        # Last.fm lets the artist through again; the replayed scrobble goes out once.
        sb.lastfm.state.filtered_artists.discard("aphex twin")
        assert "requeued 1" in await run_cli(
            "dlq", "replay", "--service", "lastfm", env=dispatch.env
        )
        replayed = await wait_until_settled(setup.database_url)
        assert replayed[("lastfm", "scrobble")] == ["sent"]
        scrobbles = [r for r in sb.lastfm.requests("/") if r.body.get("method") == "track.scrobble"]
        assert [r.status for r in scrobbles][-1] == 200
    finally:
        assert await dispatch.stop() == 0
        assert await ingest.stop() == 0
