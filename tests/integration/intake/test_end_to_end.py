"""Webhooks to the trackers, process by process (issue 10, acceptance 2): the intake,
ingest and the dispatcher run as an operator runs them, the sandbox stands in for the
trackers, and what counts is what the fakes received.

- A Jellyfin source with two mapped users: Alice listens to a track (Last.fm and
  ListenBrainz), Bob watches an episode (Trakt); start, progress, stop each.
- A personal Plex source: Carol plays a movie and Plex says it was scrobbled, with no
  position and no stop; the play counts as watched once it falls silent.
- An Emby source sending form data: Dave starts and stops a movie at 95 %.

Every webhook is then sent again, as a server or proxy would resend it: nothing new
reaches any fake.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from scrobble_sandbox import Sandbox, running_sandbox
from scrobble_shared.crypto import TokenCipher
from tests.support.databases import insert_connection
from tests.support.events import T0
from tests.support.ingest import IngestSetup
from tests.support.intake import IntakeSetup
from tests.support.services import ServiceProcess
from tests.unit.intake.test_translate_emby import emby
from tests.unit.intake.test_translate_jellyfin import EPISODE, TRACK, jellyfin
from tests.unit.intake.test_translate_plex import MOVIE as PLEX_MOVIE
from tests.unit.intake.test_translate_plex import plex

pytestmark = pytest.mark.integration
KEY = Fernet.generate_key().decode()
ALICE, BOB, CAROL, DAVE = (uuid.uuid4() for _ in range(4))
JF_ALICE, JF_BOB = "0f8fad5bd9cb469fa16570867728950e", "7c9e6679742540de944be07fc1f90ae7"
# Jellyfin sends an episode's own ids; the dispatcher gives Trakt the TVDB one.
EPISODE_IDS = 'episode {"tvdb": 8472645}'
RONIN = {
    "Name": "Ronin",
    "Id": "998877",
    "Type": "Movie",
    "ProductionYear": 1998,
    "RunTimeTicks": 72_000_000_000,
    "ProviderIds": {"Imdb": "tt0122690", "Tmdb": "8195"},
}


@pytest_asyncio.fixture(loop_scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        yield sb


async def connect(dsn: str, user: uuid.UUID, service: str, token: str) -> None:
    await insert_connection(dsn, TokenCipher(KEY), user, service, token)


async def settled(dsn: str, expected: int, deadline_s: float = 90) -> dict[tuple[str, str], int]:
    """(service, kind) -> rows sent, once ``expected`` rows other than now playing (best
    effort, skipped when the play is already over) are sent and nothing is on its way."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    found: dict[tuple[str, str], int] = {}
    while loop.time() < until:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT service, kind, status, last_error FROM scrobbles")
        finally:
            await conn.close()
        busy = [r for r in rows if r["status"] in ("queued", "sending", "retrying")]
        found = {}
        for row in rows:
            if row["status"] == "sent":
                key = (row["service"], row["kind"])
                found[key] = found.get(key, 0) + 1
        recorded = sum(n for (_, kind), n in found.items() if kind != "now_playing")
        if not busy and recorded >= expected:
            return found
        await asyncio.sleep(0.3)
    everything = [(r["service"], r["kind"], r["status"], r["last_error"]) for r in rows]
    raise AssertionError(f"not settled: {found}; all rows: {everything}")


def webhooks(paths: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    track = {"NotificationUsername": "alice", "UserId": JF_ALICE}
    episode = {"NotificationUsername": "bob", "UserId": JF_BOB}
    # Recent: the music trackers ignore plays older than 14 days.
    day = T0.strftime("%Y-%m-%dT%H")
    at = f"{day}:0{{}}:00.0000000Z".format
    jf, px, em = paths["jellyfin"], paths["plex"], paths["emby"]
    plex_fields = {"Account": {"id": 4242, "title": "carol"}}
    return [
        (jf, {"json": jellyfin("PlaybackStart", TRACK, UtcTimestamp=at(0), **track)}),
        (
            jf,
            {
                "json": jellyfin(
                    "PlaybackProgress",
                    TRACK,
                    UtcTimestamp=at(2),
                    PlaybackPositionTicks=2_000_000_000,
                    IsAutomated=True,
                    **track,
                )
            },
        ),
        (
            jf,
            {
                "json": jellyfin(
                    "PlaybackStop",
                    TRACK,
                    UtcTimestamp=at(6),
                    PlaybackPositionTicks=3_600_000_000,
                    **track,
                )
            },
        ),
        (jf, {"json": jellyfin("PlaybackStart", EPISODE, UtcTimestamp=at(1), **episode)}),
        (
            jf,
            {
                "json": jellyfin(
                    "PlaybackProgress",
                    EPISODE,
                    UtcTimestamp=at(3),
                    PlaybackPositionTicks=17_000_000_000,
                    **episode,
                )
            },
        ),
        (
            jf,
            {
                "json": jellyfin(
                    "PlaybackStop",
                    EPISODE,
                    UtcTimestamp=at(9),
                    PlaybackPositionTicks=32_500_000_000,
                    **episode,
                )
            },
        ),
        (
            px,
            {
                "files": {
                    "payload": (None, json.dumps(plex("media.play", PLEX_MOVIE, **plex_fields)))
                }
            },
        ),
        (
            px,
            {
                "files": {
                    "payload": (None, json.dumps(plex("media.scrobble", PLEX_MOVIE, **plex_fields)))
                }
            },
        ),
        (em, {"data": {"data": json.dumps(emby("playback.start", RONIN))}}),
        (
            em,
            {
                "data": {
                    "data": json.dumps(emby("playback.stop", RONIN, position_ticks=68_400_000_000))
                }
            },
        ),
    ]


async def test_webhooks_reach_the_trackers_once_each(
    ingest_setup: IngestSetup, intake_setup: IntakeSetup, sandbox: Sandbox
) -> None:
    setup, sb = ingest_setup, sandbox
    token = sb.env["SANDBOX_TOKEN"]
    # Each Trakt user an account of their own at the fake, as in life.
    trakt_users = {BOB: "trakt-bob", CAROL: "trakt-carol", DAVE: "trakt-dave"}
    sb.trakt.seed("users", [{"name": t, "token": t} for t in trakt_users.values()])
    await connect(setup.database_url, ALICE, "lastfm", token)
    await connect(setup.database_url, ALICE, "listenbrainz", token)
    for user, trakt_token in trakt_users.items():
        await connect(setup.database_url, user, "trakt", trakt_token)
    # The intake's private database and topic are the ingest's.
    intake_setup.database_url = setup.database_url
    intake_setup.playback = setup.playback
    intake_setup.env.update(DATABASE_URL=setup.database_url, PLAYBACK_TOPIC=setup.playback)
    paths = {
        "jellyfin": (await intake_setup.source("jellyfin", mappings={JF_ALICE: ALICE, "bob": BOB}))[
            1
        ],
        "plex": (await intake_setup.source("plex", owner=CAROL))[1],
        "emby": (await intake_setup.source("emby", owner=DAVE))[1],
    }
    ingest = ServiceProcess(
        "ingest", {**setup.env, "SCROBBLE_SILENCE_TIMEOUT": "3s"}, setup.tmp / "ingest.log"
    )
    dispatcher = ServiceProcess(
        "dispatcher",
        {
            **setup.env,
            **sb.env,
            "TOKEN_ENCRYPTION_KEY": KEY,
            "DISPATCHER_GROUP_ID": setup.env["INGEST_GROUP_ID"] + "-dispatch",
        },
        setup.tmp / "dispatcher.log",
    )
    intake = intake_setup.process()
    for proc in (ingest, dispatcher, intake):
        await proc.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{intake.metrics_port}", timeout=10
        ) as http:
            for path, options in webhooks(paths):
                answer = await http.post(path, **options)
                assert answer.status_code == 202, answer.text
            sent = await settled(setup.database_url, expected=8)
            first = calls(sb)
            for path, options in webhooks(paths):
                answer = await http.post(path, **options)
                assert answer.status_code == 202, answer.text
            await asyncio.sleep(6)  # past the silence timeout: a resent play would end now
            again = await settled(setup.database_url, expected=8)
            second = calls(sb)
    finally:
        for proc in (intake, dispatcher, ingest):
            assert await proc.stop() == 0, proc.log_tail()
    assert sent == {
        ("lastfm", "scrobble"): 1,
        ("listenbrainz", "scrobble"): 1,
        ("trakt", "start"): 3,
        ("trakt", "scrobble"): 2,
        ("trakt", "watched"): 1,
    } | {k: v for k, v in sent.items() if k[1] == "now_playing"}, sent
    assert first == {
        "lastfm track.scrobble": ["Aphex Twin - Windowlicker"],
        "listenbrainz single": ["Aphex Twin - Windowlicker"],
        "trakt start": ["Heat", "Ronin", EPISODE_IDS],
        "trakt stop": ["Ronin at 95 %", f"{EPISODE_IDS} at 95 %"],
        "trakt history": ["Heat"],
    }, first
    assert again == sent
    assert second == first


def describe(body: dict[str, Any]) -> str:
    """A movie by its title, an episode by the ids Trakt was given."""
    if "movie" in body:
        return str(body["movie"].get("title"))
    return "episode " + json.dumps(body.get("episode", {}).get("ids"), sort_keys=True)


def calls(sb: Sandbox) -> dict[str, list[str]]:
    """What each fake accepted, in words: the scrobbles that would show on a profile."""
    found: dict[str, list[str]] = {}

    def add(key: str, what: str) -> None:
        found.setdefault(key, []).append(what)

    for request in sb.lastfm.requests("/"):
        if request.body.get("method") == "track.scrobble" and request.status == 200:
            add(
                "lastfm track.scrobble", f"{request.body['artist[0]']} - {request.body['track[0]']}"
            )
    for request in sb.listenbrainz.requests("/submit-listens"):
        if request.status == 200 and request.body.get("listen_type") == "single":
            meta = request.body["payload"][0]["track_metadata"]
            add("listenbrainz single", f"{meta['artist_name']} - {meta['track_name']}")
    for request in sb.trakt.requests("/scrobble/"):
        if request.status != 201:
            continue
        title = describe(request.body)
        if request.path.endswith("/start"):
            add("trakt start", title)
        elif request.path.endswith("/stop"):
            add("trakt stop", f"{title} at {round(request.body['progress'])} %")
    for request in sb.trakt.requests("/sync/history"):
        if request.method == "POST" and request.status == 201:
            for movie in request.body.get("movies", []):
                add("trakt history", movie.get("title", "?"))
            for show in request.body.get("shows", []):
                add("trakt history", show.get("title", "?"))
    return {k: sorted(v) for k, v in sorted(found.items())}
