"""Tokens at rest in the real database: unreadable in the raw column, readable with the
current key and with a rotated-out key listed second, a clear error with a wrong key; key
rotation that finishes (batches, only what is not under the first key, rows no key opens
counted and left alone, locked rows waited for, resumable) and the check that finds rows no
configured key opens (``scrobble keys rotate|check``, issue 15)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from scrobble_sandbox import running_sandbox
from scrobble_shared.crypto import TokenCipher, TokenDecryptError
from scrobble_shared.db.connections import (
    UNREADABLE_TOKENS_REASON,
    ConnectionExists,
    NewConnection,
    RotationProgress,
    check_stored_tokens,
    create_connection,
    load_tokens,
    reencrypt_tokens,
    rotate_stored_tokens,
)

pytestmark = pytest.mark.integration
ACCESS = "access-token-7f3a9c"
REFRESH = "refresh-token-1b2c3d"


def key() -> str:
    return Fernet.generate_key().decode()


async def test_token_is_not_readable_in_the_raw_column(database_url: str) -> None:
    cipher = TokenCipher(key())
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_connection(
            conn, cipher, NewConnection(uuid.uuid4(), "trakt", ACCESS, REFRESH)
        )
        raw = await conn.fetchrow(
            "SELECT access_token_enc, refresh_token_enc, row_to_json(c)::text AS everything "
            "FROM connections c WHERE id = $1",
            created.id,
        )
        assert raw is not None
        for secret in (ACCESS, REFRESH):
            assert secret.encode() not in raw["access_token_enc"]
            assert secret.encode() not in raw["refresh_token_enc"]
            assert secret not in raw["everything"]
        tokens = await load_tokens(conn, cipher, created.id)
        assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
        assert ACCESS not in repr(tokens)
    finally:
        await conn.close()


async def test_rotation_keeps_tokens_readable_and_rewrites_them(database_url: str) -> None:
    old, new = key(), key()
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_connection(
            conn, TokenCipher(old), NewConnection(uuid.uuid4(), "trakt", ACCESS, REFRESH)
        )
        rotating = TokenCipher(f"{new},{old}")
        assert (await load_tokens(conn, rotating, created.id)).access_token == ACCESS
        assert await reencrypt_tokens(conn, rotating) == 1
        only_new = TokenCipher(new)
        tokens = await load_tokens(conn, only_new, created.id)
        assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
        with pytest.raises(TokenDecryptError):
            await load_tokens(conn, TokenCipher(old), created.id)
    finally:
        await conn.close()


async def test_wrong_key_gives_a_clear_error(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        created = await create_connection(
            conn, TokenCipher(key()), NewConnection(uuid.uuid4(), "lastfm", ACCESS)
        )
        with pytest.raises(TokenDecryptError, match="TOKEN_ENCRYPTION_KEY"):
            await load_tokens(conn, TokenCipher(key()), created.id)
    finally:
        await conn.close()


async def test_second_connection_to_the_same_service_is_refused(database_url: str) -> None:
    cipher = TokenCipher(key())
    conn = await asyncpg.connect(database_url)
    try:
        user = uuid.uuid4()
        await create_connection(conn, cipher, NewConnection(user, "simkl", ACCESS))
        with pytest.raises(ConnectionExists):
            await create_connection(conn, cipher, NewConnection(user, "simkl", ACCESS))
    finally:
        await conn.close()


async def test_connection_add_command_stores_encrypted_tokens(database_url: str) -> None:
    secret_key = key()
    user = str(uuid.uuid4())
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("scrobble")),
        *("connection", "add", "--user", user, "--service", "trakt"),
        *("--token", ACCESS, "--refresh-token", REFRESH, "--threshold", "90", "--sync-ratings"),
        env={**os.environ, "DATABASE_URL": database_url, "TOKEN_ENCRYPTION_KEY": secret_key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    connection_id = uuid.UUID(out.decode().strip())
    assert ACCESS not in (out + err).decode()

    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT user_id, scrobble_threshold_percent, sync_ratings, sync_watch_status "
            "FROM connections WHERE id = $1",
            connection_id,
        )
        assert row is not None
        assert str(row["user_id"]) == user
        assert row["scrobble_threshold_percent"] == 90
        assert (row["sync_ratings"], row["sync_watch_status"]) == (True, False)
        tokens = await load_tokens(conn, TokenCipher(secret_key), connection_id)
        assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
    finally:
        await conn.close()


# --- key rotation (issue 15) ---------------------------------------------------------------


async def add_connection(
    conn: asyncpg.Connection,
    cipher: TokenCipher | None,
    *,
    refresh: bool = True,
    status: str = "active",
    reason: str | None = None,
) -> uuid.UUID:
    """A connection with tokens under ``cipher``'s first key (None: no tokens at all)."""
    connection_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO connections (user_id, service, access_token_enc, refresh_token_enc, "
        "status, status_reason) VALUES ($1, 'trakt', $2, $3, $4, $5) RETURNING id",
        uuid.uuid4(),
        None if cipher is None else cipher.encrypt(ACCESS),
        None if cipher is None or not refresh else cipher.encrypt(REFRESH),
        status,
        reason,
    )
    return connection_id


async def add_oauth_state(conn: asyncpg.Connection, cipher: TokenCipher | None) -> str:
    state = uuid.uuid4().hex + uuid.uuid4().hex
    await conn.execute(
        "INSERT INTO oauth_states (state, user_id, service, code_verifier_enc, expires_at) "
        "VALUES ($1, $2, 'trakt', $3, now() + interval '10 minutes')",
        state,
        uuid.uuid4(),
        None if cipher is None else cipher.encrypt("verifier-" + state[:8]),
    )
    return state


async def positions(conn: asyncpg.Connection, cipher: TokenCipher) -> dict[str, list[int | None]]:
    """Per column, which configured key opens each stored value (None: no key)."""
    found: dict[str, list[int | None]] = {}
    for table, columns in (
        ("connections", ("access_token_enc", "refresh_token_enc")),
        ("oauth_states", ("code_verifier_enc",)),
    ):
        for column in columns:
            values = await conn.fetch(
                f"SELECT {column} AS v FROM {table} WHERE {column} IS NOT NULL"  # noqa: S608
            )
            found[f"{table}.{column}"] = sorted(
                (cipher.key_position(r["v"]) for r in values), key=lambda p: (p is None, p or 0)
            )
    return found


async def test_rotation_rewrites_what_is_not_under_the_first_key_and_finishes(
    database_url: str,
) -> None:
    old, new = key(), key()
    both = TokenCipher(f"{new},{old}")
    conn = await asyncpg.connect(database_url)
    try:
        olds = [await add_connection(conn, TokenCipher(old)) for _ in range(5)]
        await add_connection(conn, TokenCipher(old), refresh=False)
        await add_connection(conn, TokenCipher(new))
        await add_connection(conn, None)  # nothing stored: not a row to rotate
        await add_oauth_state(conn, TokenCipher(old))
        await add_oauth_state(conn, None)
        seen: list[RotationProgress] = []

        report = await rotate_stored_tokens(conn, both, batch_size=3, progress=seen.append)

        assert report.finished
        by_table = {t.table: t for t in report.tables}
        assert (by_table["connections"].total, by_table["connections"].rewritten) == (7, 6)
        assert by_table["connections"].already_current == 1
        assert by_table["connections"].unreadable == 0
        assert (by_table["oauth_states"].total, by_table["oauth_states"].rewritten) == (1, 1)
        assert report.rewritten == 7
        # Progress after each batch of 3: 3, 6, 7 rows of connections, then oauth_states.
        done = [(p.table, p.done, p.total) for p in seen if p.waiting == 0]
        assert done[:3] == [("connections", 3, 7), ("connections", 6, 7), ("connections", 7, 7)]
        assert done[-1] == ("oauth_states", 1, 1)
        # Readable under the new key alone; the plain text is what it was.
        assert await positions(conn, TokenCipher(new)) == {
            "connections.access_token_enc": [0] * 7,
            "connections.refresh_token_enc": [0] * 6,
            "oauth_states.code_verifier_enc": [0],
        }
        tokens = await load_tokens(conn, TokenCipher(new), olds[0])
        assert (tokens.access_token, tokens.refresh_token) == (ACCESS, REFRESH)
        assert tokens.version == 0  # the same tokens: a refresh's compare-and-set still holds

        again = await rotate_stored_tokens(conn, both, batch_size=3)
        assert again.finished
        assert again.rewritten == 0
        assert {t.table: t.already_current for t in again.tables} == {
            "connections": 7,
            "oauth_states": 1,
        }
    finally:
        await conn.close()


async def test_rows_no_key_opens_are_counted_left_alone_and_do_not_stop_the_rest(
    database_url: str,
) -> None:
    old, new, lost = key(), key(), key()
    conn = await asyncpg.connect(database_url)
    try:
        good = [await add_connection(conn, TokenCipher(old)) for _ in range(4)]
        stranger = await add_connection(conn, TokenCipher(lost))
        before = await conn.fetchval(
            "SELECT access_token_enc FROM connections WHERE id = $1", stranger
        )

        report = await rotate_stored_tokens(conn, TokenCipher(f"{new},{old}"), batch_size=2)

        assert report.finished
        assert (report.rewritten, report.unreadable) == (4, 1)
        for connection_id in good:
            assert (await load_tokens(conn, TokenCipher(new), connection_id)).access_token == ACCESS
        row = await conn.fetchrow(
            "SELECT access_token_enc, status FROM connections WHERE id = $1", stranger
        )
        assert row is not None
        assert row["access_token_enc"] == before  # untouched
        # Rotation is an operator's batch job: it reports, it does not judge connections.
        assert row["status"] == "active"
    finally:
        await conn.close()


async def test_rotation_puts_back_connections_marked_only_because_of_a_wrong_key(
    database_url: str,
) -> None:
    old, new = key(), key()
    conn = await asyncpg.connect(database_url)
    try:
        # Marked by a dispatcher that ran with the wrong keys; the tokens were fine all along.
        wrongly = await add_connection(
            conn, TokenCipher(old), status="needs_reconnect", reason=UNREADABLE_TOKENS_REASON
        )
        refused = await add_connection(
            conn, TokenCipher(old), status="needs_reconnect", reason="Trakt refused the token"
        )

        report = await rotate_stored_tokens(conn, TokenCipher(f"{new},{old}"))

        assert report.reactivated == 1
        rows = {
            r["id"]: (r["status"], r["status_reason"])
            for r in await conn.fetch("SELECT id, status, status_reason FROM connections")
        }
        assert rows[wrongly] == ("active", None)
        assert rows[refused] == ("needs_reconnect", "Trakt refused the token")
    finally:
        await conn.close()


async def test_locked_rows_are_waited_for_and_one_never_released_is_reported(
    database_url: str,
) -> None:
    old, new = key(), key()
    both = TokenCipher(f"{new},{old}")
    conn, holder = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        ids = sorted([await add_connection(conn, TokenCipher(old)) for _ in range(6)])
        # Another transaction holds one row the whole time: the run ends, says so, and a
        # second run after the lock is gone finishes the job.
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM connections WHERE id = $1 FOR UPDATE", ids[2])
        report = await rotate_stored_tokens(conn, both, batch_size=4, busy_wait_s=0.5)
        assert not report.finished
        assert (report.rewritten, report.busy) == (5, 1)
        opened = await positions(conn, TokenCipher(new))
        assert opened["connections.access_token_enc"] == [0, 0, 0, 0, 0, None]
        await held.rollback()
        again = await rotate_stored_tokens(conn, both)
        assert again.finished
        assert (again.rewritten, again.already_current) == (1, 5)

        # Held, then let go while the rotation waits for it: the same run finishes.
        newer = key()
        three = TokenCipher(f"{newer},{new}")
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM connections WHERE id = $1 FOR UPDATE", ids[4])
        waiting = asyncio.Event()

        def watch(progress: RotationProgress) -> None:
            if progress.waiting:
                waiting.set()

        rotation = asyncio.create_task(
            rotate_stored_tokens(conn, three, batch_size=4, busy_wait_s=60, progress=watch)
        )
        await asyncio.wait_for(waiting.wait(), 30)
        await held.rollback()
        finished = await asyncio.wait_for(rotation, 30)
        assert finished.finished
        assert (finished.rewritten, finished.busy) == (6, 0)
    finally:
        await holder.close()
        await conn.close()


async def test_check_counts_per_column_which_key_opens_what(database_url: str) -> None:
    old, new, lost = key(), key(), key()
    conn = await asyncpg.connect(database_url)
    try:
        await add_connection(conn, TokenCipher(new))
        await add_connection(conn, TokenCipher(old), refresh=False)
        stranger = await add_connection(conn, TokenCipher(lost))
        await add_oauth_state(conn, TokenCipher(lost))

        found = await check_stored_tokens(conn, TokenCipher(f"{new},{old}"))

        counts = {
            f"{c.table}.{c.column}": (c.under_first, c.under_older, c.unreadable)
            for c in found.columns
        }
        assert counts == {
            "connections.access_token_enc": (1, 1, 1),
            "connections.refresh_token_enc": (1, 0, 1),
            "oauth_states.code_verifier_enc": (0, 0, 1),
        }
        assert found.unreadable == 3
        assert found.under_older == 1
        assert stranger in found.unreadable_connections
    finally:
        await conn.close()


async def scrobble_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("scrobble")),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_keys_commands_rotate_with_progress_and_check_finds_what_no_key_opens(
    database_url: str,
) -> None:
    old, new, lost = key(), key(), key()
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(3):
            await add_connection(conn, TokenCipher(old))
        stranger = await add_connection(conn, TokenCipher(lost))
    finally:
        await conn.close()
    env = {"DATABASE_URL": database_url, "TOKEN_ENCRYPTION_KEY": f"{new},{old}"}

    code, out, err = await scrobble_cli("keys", "check", env=env)
    assert code == 1, (out, err)
    assert "connections.access_token_enc" in out
    assert "1 no key opens" in out
    assert "3 under an older key" in out
    assert str(stranger) in out + err
    assert "no configured key opens" in err

    code, out, err = await scrobble_cli("keys", "rotate", "--batch-size", "2", env=env)
    assert code == 0, (out, err)
    assert "connections: 2/4 rows" in out  # progress, batch by batch
    assert "rows/s" in out
    assert "3 row(s) rewritten under the first key" in out
    assert "1 row(s) no configured key opens" in out

    only_new = {**env, "TOKEN_ENCRYPTION_KEY": new}
    code, out, err = await scrobble_cli("keys", "check", env=only_new)
    assert code == 1  # the stranger is still unreadable, and says so
    assert "3 under the first key" in out
    for secret in (ACCESS, REFRESH, old, new, lost):
        assert secret not in out + err


async def connection_add(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("scrobble")),
        *("connection", "add", *args),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_connection_add_learns_the_listenbrainz_user_name(database_url: str) -> None:
    """Issue 17: a ListenBrainz connection made from the command line asks validate-token
    whose token it is, as the gateway does, so its history import knows the user name; a
    token ListenBrainz refuses is not stored."""
    async with running_sandbox(host="127.0.0.1", port=0) as sb:
        env = {
            "DATABASE_URL": database_url,
            "TOKEN_ENCRYPTION_KEY": key(),
            "LISTENBRAINZ_API_URL": sb.env["LISTENBRAINZ_API_URL"],
        }
        user = str(uuid.uuid4())
        token = sb.env["SANDBOX_TOKEN"]
        code, out, err = await connection_add(
            "--user", user, "--service", "listenbrainz", "--token", token, env=env
        )
        assert code == 0, err
        expected = sb.listenbrainz.state.tokens.user_for(token)
        assert expected
        refused = await connection_add(
            "--user", str(uuid.uuid4()), "--service", "listenbrainz", "--token", "wrong", env=env
        )
    assert refused[0] != 0
    assert "ListenBrainz does not accept this token" in refused[2]
    assert "wrong" not in refused[1] + refused[2]
    conn = await asyncpg.connect(database_url)
    try:
        name = await conn.fetchval(
            "SELECT external_user_name FROM connections WHERE id = $1", uuid.UUID(out.strip())
        )
        stored = await conn.fetchval(
            "SELECT count(*) FROM connections WHERE user_id <> $1", uuid.UUID(user)
        )
    finally:
        await conn.close()
    assert name == expected
    assert stored == 0
