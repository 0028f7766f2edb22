"""Load on the gateway: people connecting services through the OAuth flows and queueing
scrobbles by hand, as a browser and an app would, again after any failure.

Each browser user runs, one service after another: ``POST /connect/{service}``, the fake's
authorize page (approved at once), the gateway's callback with the flow's cookie, then
``POST /queue`` of an item of their own on the connection the flow made. A flow that fails
anywhere (the gateway killed mid-callback, a 502) is started again from the beginning, as
a person would; a queue request without an answer is sent again unchanged (the gateway
takes the same request once). What the queued item must become at the fake is the play's
expectation, so a flow that left a broken connection shows as a lost scrobble.

``in_flight`` tells a kill trial when a callback or a queue request is on its way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import jwt

from bench.chaos.plays import (
    Expect,
    Outcome,
    Play,
    Profile,
    User,
    marks,
    movie,
    track,
    viewers,
)
from bench.chaos.stack import ISSUER

log = logging.getLogger("chaos.gateway")

BROWSER_SERVICES: Final = ("trakt", "simkl", "lastfm")
FIRST_NUMBER: Final = 4_000_000  # items of their own, apart from the load's and the imports'


def bearer(secret: str, user_id: uuid.UUID) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iss": ISSUER,
        "aud": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=12)).timestamp()),
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


@dataclass
class InFlight:
    """What a kill trial waits for: a callback or a queue request on its way."""

    callback: asyncio.Event = field(default_factory=asyncio.Event)
    queue: asyncio.Event = field(default_factory=asyncio.Event)


class BrowserDriver:
    def __init__(
        self, gateway_url: str, jwt_secret: str, users: Sequence[User], tag: str, rng: random.Random
    ) -> None:
        self.gateway_url = gateway_url
        self.jwt_secret = jwt_secret
        self.users = list(users)
        self.tag = tag
        self.rng = rng
        self.plays: list[Play] = []
        self.scenario = "steady"
        self.in_flight = InFlight()
        self.flows = 0
        self.flows_failed = 0
        self.queue_resends = 0
        self.deadline_s = 600.0
        self._numbers = FIRST_NUMBER

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._user_loop(user, stop) for user in self.users))

    async def _user_loop(self, user: User, stop: asyncio.Event) -> None:
        turn = user.index
        while not stop.is_set():
            service = BROWSER_SERVICES[turn % len(BROWSER_SERVICES)]
            turn += 1
            try:
                await self.connect_and_queue(user, service)
            except Exception:  # a bug of the harness's own: say so, keep loading
                log.exception("browser user %s: %s flow crashed", user.name, service)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(2.0, 5.0))

    async def connect_and_queue(self, user: User, service: str) -> None:
        headers = bearer(self.jwt_secret, user.id)
        until = time.monotonic() + self.deadline_s
        connection_id: str | None = None
        while connection_id is None and time.monotonic() < until:
            async with httpx.AsyncClient(timeout=15) as browser:
                connection_id = await self._flow(browser, user, service, headers)
            if connection_id is None:
                self.flows_failed += 1
                await asyncio.sleep(1.0)
        if connection_id is None:
            return
        self.flows += 1
        if service != "lastfm" and not await self._sync_watch_status(connection_id, headers, until):
            return
        await self._queue(user, service, connection_id, headers, until)

    async def _sync_watch_status(
        self, connection_id: str, headers: dict[str, str], until: float
    ) -> bool:
        """Switch on watch-status sync, so the connection takes ``mark_watched`` by hand."""
        async with httpx.AsyncClient(timeout=15) as app:
            while time.monotonic() < until:
                try:
                    answer = await app.put(
                        f"{self.gateway_url}/api/v1/scrobble/connections/{connection_id}",
                        headers=headers,
                        json={"sync_watch_status": True},
                    )
                    if answer.status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(1.0)
        return False

    async def _flow(
        self, browser: httpx.AsyncClient, user: User, service: str, headers: dict[str, str]
    ) -> str | None:
        """One try of the connect flow; the connection's id, None when it must start over."""
        try:
            started = await browser.post(
                f"{self.gateway_url}/api/v1/scrobble/connect/{service}", headers=headers, json={}
            )
            if started.status_code != 200:
                return None
            authorize = started.json()["authorization_url"]
            sep = "&" if "?" in authorize else "?"
            page = await browser.get(f"{authorize}{sep}sandbox_user={user.name}")
            callback = page.headers.get("location", "")
            if page.status_code not in (302, 303) or not callback:
                return None
            self.in_flight.callback.set()
            try:
                done = await browser.get(callback)
            finally:
                self.in_flight.callback.clear()
            if done.status_code not in (200, 303):
                return None
            listed = await browser.get(
                f"{self.gateway_url}/api/v1/scrobble/connections", headers=headers
            )
            if listed.status_code != 200:
                return None
            for item in listed.json()["items"]:
                if item["service"] == service:
                    return str(item["id"])
        except (httpx.HTTPError, KeyError, ValueError):
            return None
        return None

    def _request(self, user: User, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
        self._numbers += 1
        tag = f"{self.tag}q"
        if service == "lastfm":
            item = track(tag, self._numbers)
            request = {
                "content_type": "track",
                "content_id": item["id"],
                "action": "stop",
                "progress_percent": 95,
                "content": {k: item[k] for k in ("title", "artists", "album", "duration_ms")},
            }
        else:
            # Marked watched: a history add, which Trakt and Simkl do not deduplicate.
            item = movie(tag, self._numbers)
            request = {
                "content_type": "movie",
                "content_id": item["id"],
                "action": "mark_watched",
                "external_ids": item["external_ids"],
                "content": {"title": item["title"], "year": item["year"]},
            }
        request["watched_at"] = datetime.now(UTC).isoformat()
        return item, request

    async def _queue(
        self,
        user: User,
        service: str,
        connection_id: str,
        headers: dict[str, str],
        until: float,
    ) -> None:
        item, request = self._request(user, service)
        profile = Profile.LISTENER if service == "lastfm" else Profile.VIEWER
        play = Play(
            number=self._numbers,
            user=User(user.index, user.id, profile, (service,), user.name),
            content=item,
            sends=[],
            expects=[Expect(service, user.name, marks(item, service), Outcome.RECORDED)],
            scenario=self.scenario,
        )
        play.extra["queued_by_hand"] = True
        self.plays.append(play)
        body = {"connection_id": connection_id, "request": request}
        async with httpx.AsyncClient(timeout=15) as app:
            while time.monotonic() < until:
                self.in_flight.queue.set()
                try:
                    answer = await app.post(
                        f"{self.gateway_url}/api/v1/scrobble/queue", headers=headers, json=body
                    )
                except httpx.HTTPError:
                    answer = None
                finally:
                    self.in_flight.queue.clear()
                if answer is not None and answer.status_code in (200, 202):
                    return
                if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                    play.refused = f"queue answered {answer.status_code}: {answer.text[:200]}"
                    return
                self.queue_resends += 1
                await asyncio.sleep(1.0)
        play.refused = "queue request never answered"


def browser_users(count: int, tag: str, first_index: int) -> list[User]:
    """People who connect through the gateway: no connection made for them beforehand."""
    return viewers(count, tag, first_index, "browser", ())


async def wait_for(event: asyncio.Event, timeout_s: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
        return True
    return False
