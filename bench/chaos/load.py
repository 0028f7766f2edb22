"""The steady load: plays sent to the intake the way media servers send them, at a rate,
within each service's budget, resent until the intake takes them.

A media server whose webhook gets a 503 or no answer sends it again (the intake's answer
says so, and a resend has the same event id); the driver does the same until the intake
answers 2xx or ``deadline_s`` passes. Only events the intake took count: a play is
expected at the fakes once all its events were taken.

Budgets keep the load inside what the services allow whatever the user count (Simkl
takes 1 call a second per app, Last.fm 5 per API key): a play is only made for a user
whose services have room, so a backlog left by a fault always drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
from aiokafka.errors import KafkaError

from bench.chaos.plays import Play, PlayMaker, Profile, Send, User, now_utc
from bench.chaos.world import Sources

log = logging.getLogger("chaos.load")

# Calls a play makes at each service it goes to (start + stop, or now playing + listen).
CALLS_PER_PLAY: Final = 2.0
# Seconds between two plays of one user: the per-user limits (Trakt 1 write/s, AniList
# 30 calls/min paced, a lookup, a read and a save per episode).
USER_SPACING_S: Final = {Profile.VIEWER: 4.0, Profile.LISTENER: 3.0, Profile.ANIME: 20.0}
# Calls per second the load may ask of a service at most (far under its limits).
DEFAULT_BUDGETS: Final = {"simkl": 0.4, "lastfm": 1.5, "anilist": 2.0}
TICK_S: Final = 0.1


@dataclass
class Bucket:
    rate: float
    level: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def room(self, amount: float) -> bool:
        now = time.monotonic()
        self.level = min(self.rate * 4, self.level + (now - self.at) * self.rate)
        self.at = now
        return self.level >= amount

    def take(self, amount: float) -> None:
        self.level -= amount


def jellyfin_payload(body: dict[str, Any], user: User) -> dict[str, Any]:
    """A Jellyfin webhook plugin's body for one of our (movie) events."""
    content = body["content"]
    action = body["action"]
    notification = {"start": "PlaybackStart", "stop": "PlaybackStop"}.get(
        action, "PlaybackProgress"
    )
    ids = content.get("external_ids", {})
    at = datetime.fromisoformat(body["occurred_at"])
    return {
        "NotificationType": notification,
        "UtcTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
        "ServerId": "c4a05c4a05c4a05c4a05c4a05c4a05c4",
        "ServerName": "chaos",
        "UserId": user.id.hex,
        "NotificationUsername": user.name,
        "ItemId": content["id"].replace("-", ""),
        "ItemType": "Movie",
        "Name": content["title"],
        "Year": content["year"],
        "RunTimeTicks": content["duration_ms"] * 10_000,
        "Provider_imdb": ids.get("imdb"),
        "Provider_tmdb": str(ids["tmdb"]) if "tmdb" in ids else None,
        "PlaybackPositionTicks": body["position_ms"] * 10_000,
        "IsPaused": action == "pause",
        "IsAutomated": False,
        "DeviceId": body["session_id"],
        "DeviceName": "chaos",
        "ClientName": "Jellyfin Web",
    }


class Intake:
    """Posting to the intake as a media server: again after a 503 or no answer."""

    def __init__(self, base_url: str, sources: Sources, deadline_s: float) -> None:
        self.sources = sources
        self.deadline_s = deadline_s
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(10.0, connect=3.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.resends = 0
        self.refusals: list[str] = []

    async def send(self, send: Send, user: User) -> str | None:
        """None once the intake took it; else why it never did."""
        if send.via == "jellyfin":
            path, body = self.sources.jellyfin, jellyfin_payload(send.body, user)
        else:
            path, body = self.sources.events, send.body
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        until = time.monotonic() + self.deadline_s
        while True:
            wait = 1.0
            try:
                answer = await self.http.post(path, content=payload, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"no answer ({type(exc).__name__})"
            else:
                if answer.status_code in (200, 202):
                    return None
                problem = f"{answer.status_code} {answer.text[:200]}"
                if answer.status_code == 503:
                    wait = min(float(answer.headers.get("Retry-After", "1")), 2.0)
                elif answer.status_code < 500:
                    self.refusals.append(problem)
                    return problem  # sending it again cannot help
            if time.monotonic() + wait > until:
                return f"not taken within {self.deadline_s:.0f} s: {problem}"
            self.resends += 1
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.http.aclose()


class LoadDriver:
    """Makes and sends plays at ``rate`` events a second until stopped."""

    def __init__(
        self,
        maker: PlayMaker,
        users: Sequence[User],
        intake: Intake,
        rate: float,
        rng: random.Random,
        budgets: dict[str, float] | None = None,
        max_in_flight: int = 400,
    ) -> None:
        self.maker = maker
        self.users = list(users)
        self.intake = intake
        self.rate = rate
        self.rng = rng
        self.buckets = {s: Bucket(r) for s, r in (budgets or DEFAULT_BUDGETS).items()}
        self.max_in_flight = max_in_flight
        self.plays: list[Play] = []
        self.scenario = "steady"
        self.skew: timedelta | None = None
        self.events_sent = 0
        self._free_at: dict[int, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.paused = False

    def _pick(self) -> User | None:
        now = time.monotonic()
        for _ in range(20):
            user = self.rng.choice(self.users)
            if self._free_at.get(user.index, 0.0) > now:
                continue
            needs = [s for s in user.services if s in self.buckets]
            if all(self.buckets[s].room(CALLS_PER_PLAY) for s in needs):
                for service in needs:
                    self.buckets[service].take(CALLS_PER_PLAY)
                return user
        return None

    def _skew_for(self, user: User) -> timedelta | None:
        # The skewed media server is the one half of the users watch on.
        return self.skew if self.skew is not None and user.index % 2 == 0 else None

    def start_play(self, user: User, plain: bool = False) -> Play:
        play = self.maker.make(user, now_utc(), None if plain else self._skew_for(user), plain)
        play.scenario = self.scenario
        self.plays.append(play)
        self._free_at[user.index] = float("inf")
        task = asyncio.create_task(self._send_play(play))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return play

    async def _send_play(self, play: Play) -> None:
        try:
            for send in play.sends:
                await asyncio.sleep(send.after_s)
                problem = await self.intake.send(send, play.user)
                if problem is not None:
                    play.refused = problem
                    log.warning("play %s: an event was never taken: %s", play.number, problem)
                    break
                send.accepted = True
                self.events_sent += 1
        finally:
            spacing = USER_SPACING_S[play.user.profile]
            self._free_at[play.user.index] = time.monotonic() + spacing

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: keep the event rate, one play per free user at a time."""
        credit = 0.0
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            credit = min(credit + (now - last) * self.rate, self.rate)
            last = now
            if self.paused:
                continue
            while credit >= 3 and len(self._tasks) < self.max_in_flight:
                user = self._pick()
                if user is None:
                    break
                play = self.start_play(user)
                credit -= len(play.sends)

    async def drain(self, timeout_s: float) -> None:
        """Wait for every play in flight to be sent (or refused)."""
        tasks = list(self._tasks)
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout_s)

    def in_flight(self) -> int:
        return len(self._tasks)


@dataclass
class KafkaPoison:
    """Records no media server should send, published straight to the playback topic (as
    a producer that bypasses the intake could): not JSON, not a playback event, an event
    of a user nobody connected. Each carries a marker the dead letter must show."""

    producer: Any  # AIOKafkaProducer
    topic: str
    tag: str
    sent: list[tuple[str, str]] = field(default_factory=list)  # (scenario, marker)
    count: int = 0

    def records(self, marker: str) -> list[bytes]:
        unknown_user = {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, marker)),
            "user_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{marker}:nobody")),
            "action": "stop",
            "occurred_at": now_utc().isoformat(),
            "position_ms": 1000,
            "content": {"type": "movie", "id": str(uuid.uuid4()), "title": marker},
        }
        return [
            f"{marker} is not JSON".encode(),
            json.dumps({"event_id": marker, "what": "not a playback event"}).encode(),
            json.dumps(unknown_user).encode(),
        ]

    async def send(self, scenario: str) -> None:
        """Publish one of each kind; gives up quietly while Kafka is away (it is tried
        again at the next trial)."""
        for record in range(3):
            self.count += 1
            marker = f"{self.tag}-poison-{self.count}"
            value = self.records(marker)[record]
            try:
                await asyncio.wait_for(self.producer.send_and_wait(self.topic, value), 30)
            except (KafkaError, TimeoutError, OSError) as exc:
                log.info("poison record not published (%s)", type(exc).__name__)
                continue
            self.sent.append((scenario, marker))
