"""Two acceptance points of the dispatcher, with real processes against the sandbox:

- two replicas in one consumer group share the work under load, every play reaches its
  service exactly once, and the services' rate limits hold across both processes;
- a replica killed with SIGKILL mid-flight loses nothing: a new one takes the rows it left
  in ``sending`` over once their lease has run out, and a play that went out twice is
  absorbed by the service's own duplicate rule (Trakt's 409 -> ALREADY_DONE).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from scrobble_sandbox import Sandbox
from scrobble_sandbox.core.recording import RecordedRequest
from scrobble_shared.crypto import TokenCipher
from tests.integration.dispatcher.test_delivery import (
    KEY,
    dispatcher,
    sandbox,
    wait_until_settled,
)
from tests.support.databases import insert_connection
from tests.support.events import event
from tests.support.ingest import IngestSetup
from tests.support.kafka import wait_for_group
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.integration
__all__ = ["sandbox"]  # the fixture, imported for this module's tests

USERS = 30
MOVIE_MS = 10_000_000
TRACK_MS = 367_000


async def connect_user(setup: IngestSetup, user: uuid.UUID, service: str, token: str) -> None:
    await insert_connection(setup.database_url, TokenCipher(KEY), user, service, token)


def movie(n: int) -> dict[str, object]:
    """A movie of its own per ``n`` (the fakes resolve items by ids, then title + year)."""
    return {"title": f"Movie {n}", "year": 1990 + n % 30, "external_ids": {"tmdb": 100_000 + n}}


def track(n: int) -> dict[str, object]:
    return {"title": f"Track {n}", "artists": [f"Artist {n}"], "album": f"Album {n}"}


def spacing_by_user(records: Iterable[RecordedRequest]) -> dict[str, float]:
    """The least time between two consecutive requests of each user, as the fake saw them."""
    times: dict[str, list[float]] = defaultdict(list)
    for r in records:
        assert r.user is not None, r
        times[r.user].append(r.at)
    return {
        user: min((b - a for a, b in itertools.pairwise(sorted(ts))), default=float("inf"))
        for user, ts in times.items()
    }


def busiest_second(records: Iterable[RecordedRequest]) -> int:
    """The most requests that arrived within any 1 s window [t, t + 1)."""
    times = sorted(r.at for r in records)
    return max((sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times)), default=0)


def sent_count(metrics: str) -> int:
    """Rows one replica recorded as delivered, from its Prometheus counter."""
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("scrobble_scrobbles_sent_total{")
    )


def lastfm_calls(sb: Sandbox, method: str) -> list[RecordedRequest]:
    return [r for r in sb.lastfm.requests("/") if r.body.get("method") == method]


async def test_two_replicas_share_the_work_and_the_limits(
    ingest_setup: IngestSetup, sandbox: Sandbox
) -> None:
    setup, sb = ingest_setup, sandbox
    users = [uuid.uuid4() for _ in range(USERS)]
    sb.trakt.seed("users", [{"name": f"t{i}", "token": f"trakt-{i}"} for i in range(USERS)])
    sb.lastfm.seed(
        "users", [{"name": f"l{i}", "session_key": f"lastfm-sk-{i}"} for i in range(USERS)]
    )
    events = []
    for i, user in enumerate(users):
        await connect_user(setup, user, "trakt", f"trakt-{i}")
        await connect_user(setup, user, "lastfm", f"lastfm-sk-{i}")
        uid = str(user)
        events += [
            event("start", 0, at_s=0, user=uid, session=f"m{i}", content=movie(i)),
            event("stop", 9_000_000, at_s=60, user=uid, session=f"m{i}", content=movie(i)),
            event(
                "start", 0, content_type="track", at_s=100, user=uid, session=f"t{i}",
                content=track(i),
            ),
            event(
                "progress", 200_000, content_type="track", at_s=300, user=uid, session=f"t{i}",
                content=track(i),
            ),
        ]  # fmt: skip
    await setup.publish_plays(events)
    ingest = setup.process()
    first = dispatcher(setup, sb)
    second = ServiceProcess("dispatcher", first.env, setup.tmp / "dispatcher-2.log")
    await asyncio.gather(first.start(), second.start())  # same DISPATCHER_GROUP_ID
    # Both members hold partitions before any work arrives; else the first to join may
    # have taken all of it before the group rebalanced.
    for service in ("trakt", "lastfm"):
        group = f"{first.env['DISPATCHER_GROUP_ID']}.{service}"
        await wait_for_group(setup.infra.kafka_bootstrap, group, members=2)
    await ingest.start()
    try:
        found = await wait_until_settled(setup.database_url, deadline_s=55)
        shares = [sent_count(await p.metrics()) for p in (first, second)]
    finally:
        codes = tuple(await asyncio.gather(first.stop(), second.stop(), ingest.stop()))
    logs = first.log_tail() + "\n---\n" + second.log_tail()
    assert codes == (0, 0, 0), logs
    # Now playing is best effort: what pacing would have delayed past use is dropped as
    # failed (never retried); everything else is sent.
    now_playing = found.pop(("lastfm", "now_playing"))
    assert len(now_playing) == USERS
    assert set(now_playing) <= {"sent", "failed"}, now_playing
    assert found == {
        ("trakt", "start"): ["sent"] * USERS,
        ("trakt", "scrobble"): ["sent"] * USERS,
        ("lastfm", "scrobble"): ["sent"] * USERS,
    }, logs

    trakt = sb.trakt.requests("/scrobble/")
    lastfm = sb.lastfm.requests("/")
    assert [r for r in trakt + lastfm if r.status == 429] == []
    assert Counter(r.status for r in trakt) == {201: 2 * USERS}
    assert Counter(r.status for r in lastfm) == {200: USERS + now_playing.count("sent")}
    # Each play reached its fake once: one start and one stop per Trakt user, one now
    # playing and one scrobble per Last.fm user, and the fakes hold each play once.
    expected = {f"t{i}" for i in range(USERS)}
    for path in ("/scrobble/start", "/scrobble/stop"):
        per_user = Counter(r.user for r in sb.trakt.requests(path))
        assert set(per_user) == expected, per_user
        assert set(per_user.values()) == {1}, per_user
    expected = {f"l{i}" for i in range(USERS)}
    per_user = Counter(r.user for r in lastfm_calls(sb, "track.scrobble"))
    assert set(per_user) == expected, per_user
    assert set(per_user.values()) == {1}, per_user
    per_user = Counter(r.user for r in lastfm_calls(sb, "track.updateNowPlaying"))
    assert set(per_user) <= expected, per_user
    assert sum(per_user.values()) == now_playing.count("sent"), per_user
    assert set(per_user.values()) <= {1}, per_user
    history = Counter((h.user, h.action) for h in sb.trakt.state.history)
    assert history == {(f"t{i}", "scrobble"): 1 for i in range(USERS)}
    scrobbled = Counter((s.user, s.track) for s in sb.lastfm.state.scrobbles)
    assert scrobbled == {(f"l{i}", f"Track {i}"): 1 for i in range(USERS)}

    # The limits held across both processes, measured at the fakes.
    trakt_gap = min(spacing_by_user(trakt).values())
    assert trakt_gap >= 1.0, trakt_gap
    assert busiest_second(lastfm) <= 5
    # Both replicas did a share of the work (the topics' partitions spread over the group).
    assert sum(shares) == 3 * USERS + now_playing.count("sent"), shares
    assert min(shares) > 0, shares
    print(  # the figures, for the report (pytest -s)
        f"\nrows sent per replica {shares}; trakt min per-user gap {trakt_gap:.3f} s; "
        f"lastfm busiest 1 s window {busiest_second(lastfm)}; "
        f"requests trakt {len(trakt)} lastfm {len(lastfm)}"
    )


PLAYS = 8
KILL_AFTER = 3  # the stop that the fake takes in, and whose answer the dispatcher never reads


async def test_a_killed_dispatcher_loses_nothing_and_doubles_are_absorbed(
    ingest_setup: IngestSetup, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup, sb = ingest_setup, sandbox
    user = uuid.uuid4()
    await connect_user(setup, user, "trakt", sb.env["SANDBOX_TOKEN"])
    # One user, 8 plays: paced at Trakt's 1 write/s, delivery takes about 9 s.
    events = [
        event("stop", 9_000_000, at_s=60 * n, user=str(user), session=f"m{n}", content=movie(n))
        for n in range(PLAYS)
    ]
    await setup.publish_plays(events)
    ingest, first = setup.process(), dispatcher(setup, sb)
    killed = asyncio.Event()

    # SIGKILL the dispatcher the moment the fake has accepted the 3rd stop, before the answer
    # leaves: the play is in Trakt's history, the row stays 'sending' (the worst moment).
    original = sb.trakt.handle

    async def kill_mid_flight(request: web.Request, *rest: Any) -> web.StreamResponse:
        response = await original(request, *rest)
        stops = [r for r in sb.trakt.requests("/scrobble/stop") if r.status == 201]
        if len(stops) == KILL_AFTER and not killed.is_set() and first.proc is not None:
            first.proc.send_signal(signal.SIGKILL)
            killed.set()
        return response

    monkeypatch.setattr(sb.trakt, "handle", kill_mid_flight)
    await ingest.start()
    await first.start()
    try:
        await asyncio.wait_for(killed.wait(), 30)
        assert first.proc is not None
        assert await asyncio.wait_for(first.proc.wait(), 10) == -signal.SIGKILL
        left = await backdate_sending(setup.database_url)
        assert len(left) == 1, left  # the row whose answer was lost
        second = ServiceProcess("dispatcher", first.env, setup.tmp / "dispatcher-2.log")
        await second.start()
        try:
            found = await wait_until_settled(setup.database_url, deadline_s=40)
        finally:
            assert await second.stop() == 0
    finally:
        assert await ingest.stop() == 0
    assert found == {("trakt", "scrobble"): ["sent"] * PLAYS}, second.log_tail()

    stops = sb.trakt.requests("/scrobble/stop")
    per_item: dict[str, list[int | None]] = defaultdict(list)
    for r in stops:
        per_item[r.body["movie"]["title"]].append(r.status)
    doubled = {title: codes for title, codes in per_item.items() if len(codes) > 1}
    # Sent twice: only the play in flight at the kill; Trakt's 409 said it had it already.
    assert doubled == {f"Movie {KILL_AFTER - 1}": [201, 409]}, per_item
    assert all(codes == [201] for t, codes in per_item.items() if t not in doubled), per_item
    assert len(per_item) == PLAYS
    assert [r for r in stops if r.status == 429] == []
    # The 409 was taken as already done: the row is sent with that status.
    assert await http_status_of(setup.database_url, "sent") == Counter({201: PLAYS - 1, 409: 1})
    # Trakt's history holds every play once.
    history = Counter(h.movie["title"] for h in sb.trakt.state.history if h.movie)
    assert history == {f"Movie {n}": 1 for n in range(PLAYS)}, history
    gap = min(spacing_by_user(stops).values())
    assert gap >= 1.0, gap
    print(f"\nstops per item {dict(per_item)}; min gap {gap:.3f} s; left sending {len(left)}")


async def backdate_sending(dsn: str) -> list[uuid.UUID]:
    """Make the lease of rows left in 'sending' run out now (instead of in 2 minutes)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "UPDATE scrobbles SET updated_at = now() - interval '10 minutes' "
            "WHERE status = 'sending' RETURNING id"
        )
    finally:
        await conn.close()
    return [r["id"] for r in rows]


async def http_status_of(dsn: str, status: str) -> Counter[int | None]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT last_http_status FROM scrobbles WHERE status = $1", status)
    finally:
        await conn.close()
    return Counter(r["last_http_status"] for r in rows)
