"""Imports running all along: history seeded at the fakes, imported through the gateway
again and again, while workers are killed.

Each import user has Trakt, Last.fm and ListenBrainz connections with history at the fakes
and a Simkl connection that syncs watch status. A round seeds new history (a large one the
first time, so a job spans many pages), starts an import of each of the three services
through the gateway and follows the jobs to their end. Afterwards Postgres must hold every
seeded item once (``imported_items``), and Simkl every Trakt play once (two-way sync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import httpx

from bench.chaos.gateway_load import bearer
from bench.chaos.plays import Expect, Outcome, Play, User, marks, movie, viewers
from bench.chaos.world import Sandbox

log = logging.getLogger("chaos.imports")

IMPORTED: Final = ("trakt", "lastfm", "listenbrainz")
# The first round spans pages (Trakt 100 a page, Last.fm 200, ListenBrainz 1000); later ones
# are small. Every Trakt play becomes a Simkl write (two-way sync), and Simkl takes one
# write a second per app, playback included.
FIRST_ROUND: Final = {"trakt": 120, "lastfm": 450, "listenbrainz": 2100}
QUICK_FIRST_ROUND: Final = {"trakt": 30, "lastfm": 250, "listenbrainz": 1100}
LATER_ROUNDS: Final = {"trakt": 2, "lastfm": 10, "listenbrainz": 20}
ROUND_GAP_S: Final = 20.0
FIRST_NUMBER: Final = 2_000_000  # items of their own, apart from the load's and the gateway's


def import_users(count: int, tag: str, first_index: int) -> list[User]:
    return viewers(
        count, tag, first_index, "importer", ("trakt", "simkl", "lastfm", "listenbrainz")
    )


@dataclass
class Seeded:
    """What the fakes were given to be imported, per (user name, service)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, user: str, service: str, n: int) -> None:
        self.counts[(user, service)] = self.counts.get((user, service), 0) + n


class ImportDriver:
    def __init__(
        self,
        gateway_url: str,
        jwt_secret: str,
        sandbox: Sandbox,
        users: Sequence[User],
        tag: str,
        dsn: str,
        first_round: dict[str, int] = FIRST_ROUND,
    ) -> None:
        self.dsn = dsn
        self.first_round = first_round
        self.gateway_url = gateway_url
        self.jwt_secret = jwt_secret
        self.sandbox = sandbox
        self.users = list(users)
        self.tag = tag
        self.seeded = Seeded()
        self.plays: list[Play] = []  # Simkl's copy of each Trakt play
        self.scenario = "steady"
        self.jobs: dict[str, str] = {}  # job id -> last state seen
        self.failures: list[str] = []
        self.rounds = 0
        self._numbers = FIRST_NUMBER

    async def run(self, stop: asyncio.Event) -> None:
        first = True
        while not stop.is_set():
            await asyncio.gather(*(self._round(user, first) for user in self.users))
            first = False
            self.rounds += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ROUND_GAP_S)

    async def _after(self, user: User) -> int:
        """The end of the user's last finished import (the next one reads only what is
        newer): new history is dated after it, one second apart, never in the future."""
        conn = await asyncpg.connect(self.dsn)
        try:
            until = await conn.fetchval(
                "SELECT max(j.until_at) FROM import_jobs j JOIN connections c "
                "ON c.id = j.connection_id WHERE c.user_id = $1 AND j.state = 'done'",
                user.id,
            )
        finally:
            await conn.close()
        return 0 if until is None else int(until.timestamp()) + 1

    async def _seed(self, user: User, sizes: dict[str, int]) -> None:
        needed = max(sizes.values())
        after = await self._after(user)
        # Until enough whole seconds have passed since then (at most a minute).
        await asyncio.sleep(max(0, after + needed + 1 - int(time.time())))
        stamps = iter(range(int(time.time()) - needed, int(time.time())))
        now = datetime.now(UTC)
        history = []
        for _ in range(sizes["trakt"]):
            self._numbers += 1
            item = movie(f"{self.tag}i", self._numbers)
            history.append(
                {
                    "type": "movie",
                    "movie": {"title": item["title"], "year": item["year"],
                              "ids": item["external_ids"]},
                    "watched_at": now.isoformat(),
                }
            )  # fmt: skip
            play = Play(
                number=self._numbers,
                user=user,
                content=item,
                sends=[],
                expects=[Expect("simkl", user.name, marks(item, "simkl"), Outcome.RECORDED)],
                scenario=self.scenario,
            )
            play.extra["imported"] = True
            self.plays.append(play)
        await self.sandbox.seed("trakt", "history", history, user=user.name)
        self.seeded.add(user.name, "trakt", len(history))
        scrobbles = []
        for stamp in list(stamps)[-sizes["lastfm"] :]:
            self._numbers += 1
            scrobbles.append(
                {"artist": "Chaos Importers", "track": f"Imported {self.tag} {self._numbers}",
                 "timestamp": stamp}
            )  # fmt: skip
        await self.sandbox.seed("lastfm", "scrobbles", scrobbles, user=user.name)
        self.seeded.add(user.name, "lastfm", len(scrobbles))
        listens = []
        for stamp in range(int(time.time()) - sizes["listenbrainz"], int(time.time())):
            self._numbers += 1
            listens.append(
                {"listened_at": stamp,
                 "track_metadata": {"artist_name": "Chaos Importers",
                                    "track_name": f"Imported {self.tag} {self._numbers}"}}
            )  # fmt: skip
        await self.sandbox.seed("listenbrainz", "listens", listens, user=user.name)
        self.seeded.add(user.name, "listenbrainz", len(listens))

    async def _round(self, user: User, first: bool) -> None:
        try:
            await self._seed(user, self.first_round if first else LATER_ROUNDS)
            await asyncio.sleep(1.5)  # newer than the last job's end, for an incremental one
            await asyncio.gather(*(self._import(user, service) for service in IMPORTED))
        except Exception:  # a bug of the harness's own: say so, keep loading
            log.exception("import round of %s crashed", user.name)

    async def _import(self, user: User, service: str) -> None:
        headers = bearer(self.jwt_secret, user.id)
        until = time.monotonic() + 900
        job_id: str | None = None
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=15) as app:
            while job_id is None and time.monotonic() < until:
                try:
                    answer = await app.post(
                        f"/api/v1/scrobble/import/{service}", headers=headers, json={}
                    )
                    if answer.status_code in (200, 202):
                        job_id = str(answer.json()["id"])
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(1.0)
            if job_id is None:
                self.failures.append(f"{user.name} {service}: the import never started")
                return
            while time.monotonic() < until:
                state = await self._state(app, headers, job_id)
                if state is not None:
                    self.jobs[job_id] = state
                    if state in ("done", "failed", "cancelled"):
                        if state != "done":
                            self.failures.append(f"{user.name} {service}: job {job_id} {state}")
                        return
                await asyncio.sleep(1.0)
            self.failures.append(f"{user.name} {service}: job {job_id} not finished in time")

    async def _state(self, app: httpx.AsyncClient, headers: dict[str, str], job: str) -> str | None:
        try:
            answer = await app.get(f"/api/v1/scrobble/import/jobs/{job}", headers=headers)
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        found: Any = answer.json().get("state")
        return str(found)
