"""Migrations on a real Postgres: from empty, re-applied, concurrent, and the constraints
they put in the database."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from scrobble_shared.db.migrate import (
    MIGRATION_LOCK_KEY,
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
)

pytestmark = pytest.mark.integration
SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
EXPECTED_TABLES = {
    "id_lookups",
    "rejected_records",
    "connections",
    "processed_events",
    "play_sessions",
    "scrobbles",
    "outbox",
    "import_jobs",
    "imported_items",
    "oauth_states",
    "pacing_slots",
    "pacing_turns",
    "sources",
    "source_users",
    "login_links",
    "page_sessions",
    "schema_migrations",
}


async def tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def test_apply_from_empty_then_reapply_is_a_no_op(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await tables(conn) == set()
        first = await apply_migrations(conn)
        assert [m.version for m in first] == [m.version for m in load_migrations()]
        assert await tables(conn) == EXPECTED_TABLES
        recorded = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        assert {r["version"] for r in recorded} == {m.version for m in first}
        second = await apply_migrations(conn)
        assert second == []
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(first)
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        shipped = load_migrations()
        await apply_migrations(conn)
        edited = [Migration(shipped[0].version, shipped[0].name, shipped[0].sql + "\n-- edit")]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, edited)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_done(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        broken = [Migration(1, "broken", "CREATE TABLE half (id int); SELECT no_such_fn();")]
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(conn, broken)
        assert await tables(conn) == {"schema_migrations"}
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()


async def test_concurrent_migrate_commands_do_not_conflict(empty_database_url: str) -> None:
    """Four ``scrobble migrate`` processes start while the lock is held, so they all queue
    on it and race the moment it is released: exactly one applies, none fails."""
    env = {**os.environ, "DATABASE_URL": empty_database_url}
    holder = await asyncpg.connect(empty_database_url)
    await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)

    async def migrate() -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            SCROBBLE,
            "migrate",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    runs = [asyncio.create_task(migrate()) for _ in range(4)]
    try:
        waiting_sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        loop = asyncio.get_running_loop()
        until = loop.time() + 30
        while await holder.fetchval(waiting_sql) < 4:
            assert loop.time() < until, "the migrate processes never queued on the lock"
            assert not any(run.done() for run in runs), "a migrate ran without the lock"
            await asyncio.sleep(0.1)
    finally:
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await holder.close()
    results = await asyncio.gather(*runs)
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    applied_now = [out for _, out, _ in results if out.startswith("applied")]
    up_to_date = [out for _, out, _ in results if "up to date" in out]
    assert len(applied_now) == 1, results
    assert len(up_to_date) == 3, results
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await tables(conn) == EXPECTED_TABLES
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(
            load_migrations()
        )
    finally:
        await conn.close()


async def _connection(conn: asyncpg.Connection, service: str = "trakt") -> uuid.UUID:
    connection_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO connections (user_id, service) VALUES ($1, $2) RETURNING id",
        uuid.uuid4(),
        service,
    )
    return connection_id


async def _scrobble(conn: asyncpg.Connection, connection_id: uuid.UUID, key: str) -> None:
    await conn.execute(
        """INSERT INTO scrobbles (connection_id, user_id, service, dedupe_key, kind,
               content_type, content_id, request, occurred_at)
           VALUES ($1, $2, 'trakt', $3, 'scrobble', 'movie', $4, '{}', now())""",
        connection_id,
        uuid.uuid4(),
        key,
        uuid.uuid4(),
    )


async def test_one_play_is_one_scrobble_per_connection(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        first, second = await _connection(conn), await _connection(conn)
        await _scrobble(conn, first, "play:1:watched")
        with pytest.raises(asyncpg.UniqueViolationError):
            await _scrobble(conn, first, "play:1:watched")
        await _scrobble(conn, first, "play:2:watched")  # a second real play
        await _scrobble(conn, second, "play:1:watched")  # the same play, another connection
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        (
            "INSERT INTO connections (user_id, service) VALUES (gen_random_uuid(), 'myspace')",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO connections (user_id, service, scrobble_threshold_percent) "
            "VALUES (gen_random_uuid(), 'trakt', 0)",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO connections (user_id, service, refresh_token_enc) "
            "VALUES (gen_random_uuid(), 'trakt', '\\x00')",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO oauth_states (state, user_id, service, expires_at) "
            "VALUES ('short', gen_random_uuid(), 'trakt', now() + interval '10 minutes')",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO oauth_states (state, user_id, service, expires_at) "
            "VALUES (repeat('s', 40), gen_random_uuid(), 'trakt', now() - interval '1 second')",
            asyncpg.CheckViolationError,
        ),
        (
            "INSERT INTO scrobbles (connection_id, user_id, service, dedupe_key, kind, "
            "content_type, content_id, request, occurred_at) VALUES (gen_random_uuid(), "
            "gen_random_uuid(), 'trakt', 'k', 'scrobble', 'movie', gen_random_uuid(), '{}', now())",
            asyncpg.ForeignKeyViolationError,
        ),
    ],
)
async def test_constraints_live_in_the_database(
    database_url: str, statement: str, error: type[Exception]
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(error):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_one_connection_per_user_and_service(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        user = uuid.uuid4()
        insert = "INSERT INTO connections (user_id, service) VALUES ($1, $2)"
        await conn.execute(insert, user, "trakt")
        await conn.execute(insert, user, "lastfm")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, user, "trakt")
    finally:
        await conn.close()


async def test_status_rules_of_the_scrobble_queue(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        connection_id = await _connection(conn)
        await _scrobble(conn, connection_id, "k1")
        with pytest.raises(asyncpg.CheckViolationError):  # sent needs sent_at
            await conn.execute("UPDATE scrobbles SET status = 'sent'")
        with pytest.raises(asyncpg.CheckViolationError):  # dead needs a reason
            await conn.execute("UPDATE scrobbles SET status = 'dead'")
        await conn.execute("UPDATE scrobbles SET status = 'dead', last_error = 'not found'")
        await conn.execute("UPDATE scrobbles SET status = 'sent', sent_at = $1", datetime.now(UTC))
    finally:
        await conn.close()


async def test_only_one_active_import_per_connection(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        connection_id = await _connection(conn)
        insert = (
            "INSERT INTO import_jobs (connection_id, user_id, service) "
            "VALUES ($1, gen_random_uuid(), 'trakt') RETURNING id"
        )
        job = await conn.fetchval(insert, connection_id)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.fetchval(insert, connection_id)
        await conn.execute(
            "UPDATE import_jobs SET state = 'done', finished_at = $2 WHERE id = $1",
            job,
            datetime.now(UTC) + timedelta(seconds=1),
        )
        await conn.fetchval(insert, connection_id)  # a new import once the first is done
    finally:
        await conn.close()
