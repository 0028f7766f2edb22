"""Setting the stage: the run's database and topics, its users with their own tokens at
every fake they use, their connections (tokens encrypted as the gateway stores them), and
the media-server sources the load comes in through."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from bench.chaos.plays import POISON_IMDB_BASE, POISON_POOL, Profile, User
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import NewConnection, create_connection
from scrobble_shared.db.sources import create_source, map_server_user
from scrobble_shared.sources import webhook_path

# Every run's tag, database and topic prefix starts so (``chaos`` and 8 hex digits).
RUN_PREFIX: Final = "chaos"

SERVICES: Final = ("trakt", "simkl", "anilist", "lastfm", "listenbrainz")


@dataclass(frozen=True)
class Topics:
    prefix: str  # the run's tag and a dot

    @property
    def playback(self) -> str:
        return f"{self.prefix}playback.events"

    @property
    def playback_dlq(self) -> str:
        return f"{self.playback}.dlq"

    @property
    def scrobble_prefix(self) -> str:
        return f"{self.prefix}scrobble."

    def service(self, service: str) -> str:
        return f"{self.scrobble_prefix}{service}"

    def dead_letters(self, service: str) -> str:
        return f"{self.service(service)}.dlq"

    def all(self) -> list[str]:
        names = [self.playback, self.playback_dlq]
        names += [t for s in SERVICES for t in (self.service(s), self.dead_letters(s))]
        return [*names, f"{self.scrobble_prefix}imports", f"{self.scrobble_prefix}imported"]


async def leftover_topics(bootstrap: str, keep_prefix: str) -> list[str]:
    """Topics of earlier runs (``chaos<hex>.``) on the harness's private broker: a broker
    killed with -9 recovers every partition it holds before it answers, so runs that died
    or kept their data would slow each restart until it outlasts its timeout."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    return sorted(n for n in names if n.startswith(RUN_PREFIX) and not n.startswith(keep_prefix))


async def leftover_databases(admin_dsn: str, keep: str) -> list[str]:
    """Databases of earlier runs on the harness's private server."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2",
            f"{RUN_PREFIX}%",
            keep,
        )
    finally:
        await conn.close()
    return [row["datname"] for row in rows]


class Sandbox:
    """The sandbox's admin routes (``/_sandbox/...``), reached directly, never through the
    proxy: seeding, faults and the fakes' own records."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=120)

    async def env(self) -> dict[str, str]:
        answer = await self.http.get("/_sandbox/env")
        answer.raise_for_status()
        found: dict[str, str] = answer.json()
        return found

    async def seed(
        self, fake: str, kind: str, items: list[dict[str, Any]], user: str | None = None
    ) -> None:
        body: dict[str, Any] = {"kind": kind, "items": items}
        if user is not None:
            body["user"] = user
        answer = await self.http.post(f"/_sandbox/{fake}/seed", json=body)
        answer.raise_for_status()

    async def state(self, fake: str) -> dict[str, Any]:
        answer = await self.http.get(f"/_sandbox/{fake}/state")
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found

    async def fault(self, fake: str, **spec: Any) -> None:
        answer = await self.http.post(f"/_sandbox/{fake}/faults", json=spec)
        answer.raise_for_status()

    async def faults(self, fake: str) -> list[dict[str, Any]]:
        answer = await self.http.get(f"/_sandbox/{fake}/faults")
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return found

    async def clear_faults(self, fake: str) -> None:
        answer = await self.http.delete(f"/_sandbox/{fake}/faults")
        answer.raise_for_status()

    async def auto_approve(self, enabled: bool) -> None:
        answer = await self.http.put("/_sandbox/auto_approve", json={"enabled": enabled})
        answer.raise_for_status()

    async def clear_requests(self, fake: str) -> None:
        answer = await self.http.delete(f"/_sandbox/{fake}/requests")
        answer.raise_for_status()

    async def aclose(self) -> None:
        await self.http.aclose()


def poison_imdbs() -> list[str]:
    return [f"tt{POISON_IMDB_BASE + n}" for n in range(POISON_POOL)]


async def seed_users(sandbox: Sandbox, users: Sequence[User]) -> None:
    """Each user's account and own token at every fake they use; AniList also knows each
    anime user's show (by its MyAnimeList id, as the dispatcher looks it up)."""
    by_fake: dict[str, list[dict[str, Any]]] = {s: [] for s in SERVICES}
    media = []
    for user in users:
        for service in user.services:
            token = user.token(service)
            key = "session_key" if service == "lastfm" else "token"
            by_fake[service].append({"name": user.name, key: token})
        if user.profile is Profile.ANIME:
            media.append(
                {
                    "id": user.anime_anilist,
                    "idMal": user.anime_mal,
                    "title": f"Chaos Anime {user.name}",
                    "episodes": 5000,
                }
            )
    for fake, items in by_fake.items():
        for start in range(0, len(items), 500):
            await sandbox.seed(fake, "users", items[start : start + 500])
    if media:
        await sandbox.seed("anilist", "media", media)
    await sandbox.seed("trakt", "unknown_ids", [{"imdb": i} for i in poison_imdbs()])


async def connect_users(
    dsn: str, cipher: TokenCipher, users: Sequence[User], syncing: frozenset[str] = frozenset()
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """A connection per user and service, as the gateway would store it (those of the
    ``syncing`` services take watch status synced from the user's other services); returns
    their ids."""
    made: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    conn = await asyncpg.connect(dsn)
    try:
        for user in users:
            for service in user.services:
                new = NewConnection(
                    user_id=user.id,
                    service=service,
                    access_token=user.token(service),
                    external_user_name=user.name,
                    sync_watch_status=service in syncing,
                )
                created = await create_connection(conn, cipher, new)
                made[(user.id, service)] = created.id
    finally:
        await conn.close()
    return made


@dataclass(frozen=True)
class Sources:
    """Webhook paths (with their secrets) of the run's media servers."""

    events: str
    jellyfin: str


async def make_sources(dsn: str, users: Sequence[User]) -> Sources:
    """An operator's events source (the host application: its user ids are ours) and a
    Jellyfin server whose users are mapped by name."""
    conn = await asyncpg.connect(dsn)
    try:
        _, events_secret = await create_source(conn, "events", "chaos events", None)
        jellyfin, jellyfin_secret = await create_source(conn, "jellyfin", "chaos jellyfin", None)
        for user in users:
            await map_server_user(conn, jellyfin.id, "any", user.name, user.id)
    finally:
        await conn.close()
    return Sources(
        events=webhook_path("events", events_secret),
        jellyfin=webhook_path("jellyfin", jellyfin_secret),
    )
