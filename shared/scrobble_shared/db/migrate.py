"""Versioned schema migrations: ``NNNN_name.sql`` files applied in order, each once.

The runner holds a Postgres advisory lock for the whole run, so concurrent
``scrobble migrate`` processes (several replicas starting at once) queue up instead of
racing; the later ones find everything applied and do nothing. Each migration runs in its
own transaction together with the row that records it. A file changed after it was applied
is refused, because the database would no longer match what the repository says. After
them, the registry's trackers are written to ``trackers`` (what service columns reference).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from scrobble_shared.trackers.registry import SERVICES

# An arbitrary fixed key for pg_advisory_lock, private to this project.
MIGRATION_LOCK_KEY = 7_361_024_553_017_117

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class MigrationError(Exception):
    """The migrations in the package and the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found: list[Migration] = []
    for entry in resources.files("scrobble_shared.migrations").iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


async def apply_migrations(
    conn: asyncpg.Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply what is pending; returns the migrations applied now (empty when up to date)."""
    pending_source = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        done_now: list[Migration] = []
        for migration in pending_source:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead of editing an old one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done_now.append(migration)
        await _register_trackers(conn)
        return done_now
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def _register_trackers(conn: asyncpg.Connection) -> None:
    """The registry's trackers as rows of ``trackers``, which every service column
    references (once the migrations have made that table): a tracker added to the registry
    needs no migration of its own."""
    if await conn.fetchval("SELECT to_regclass('trackers')") is None:
        return
    await conn.execute(
        "INSERT INTO trackers (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
        list(SERVICES),
    )
