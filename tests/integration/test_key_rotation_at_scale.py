"""``scrobble keys rotate`` on 10,000 connections (issue 15): afterwards every token is
readable under the new key alone; killed half way (SIGKILL while half the rows are held by
another transaction) and run again, it finishes, rewriting only what the first run had not.
The times and rows/s are printed (``pytest -s``), never asserted."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from scrobble_shared.crypto import TokenCipher

pytestmark = pytest.mark.integration
SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
CONNECTIONS = 10_000


def key() -> str:
    return Fernet.generate_key().decode()


async def seed(conn: asyncpg.Connection, cipher: TokenCipher, n: int) -> None:
    records = [
        (uuid.uuid4(), "trakt", cipher.encrypt(f"access-{i}"), cipher.encrypt(f"refresh-{i}"))
        for i in range(n)
    ]
    await conn.copy_records_to_table(
        "connections",
        records=records,
        columns=["user_id", "service", "access_token_enc", "refresh_token_enc"],
    )


async def key_positions(conn: asyncpg.Connection, cipher: TokenCipher) -> dict[int | None, int]:
    """How many stored values each configured key opens (None: no key), both columns."""
    counts: dict[int | None, int] = {}
    for row in await conn.fetch("SELECT access_token_enc, refresh_token_enc FROM connections"):
        for value in (row["access_token_enc"], row["refresh_token_enc"]):
            position = cipher.key_position(value)
            counts[position] = counts.get(position, 0) + 1
    return counts


async def readable_under(conn: asyncpg.Connection, only: TokenCipher) -> int:
    """Connections whose two tokens decrypt, to what was stored, under ``only``."""
    good = 0
    for row in await conn.fetch("SELECT access_token_enc, refresh_token_enc FROM connections"):
        access, refresh = (
            only.decrypt(row["access_token_enc"]),
            only.decrypt(row["refresh_token_enc"]),
        )
        good += access.startswith("access-") and refresh == "refresh-" + access[7:]
    return good


async def rotate_process(database_url: str, keys: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SCROBBLE,
        *("keys", "rotate", "--busy-wait", "300"),
        env={**os.environ, "DATABASE_URL": database_url, "TOKEN_ENCRYPTION_KEY": keys},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_rotate(database_url: str, keys: str) -> tuple[str, float]:
    started = time.perf_counter()
    proc = await rotate_process(database_url, keys)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, (out.decode(), err.decode())
    return out.decode(), time.perf_counter() - started


async def test_rotate_10000_connections_and_finish_after_a_kill_half_way(
    database_url: str,
) -> None:
    old, new, newer = key(), key(), key()
    conn = await asyncpg.connect(database_url)
    holder = await asyncpg.connect(database_url)
    try:
        await seed(conn, TokenCipher(old), CONNECTIONS)

        # 1. The whole table, old key second: every token under the new key alone after.
        out, seconds = await run_rotate(database_url, f"{new},{old}")
        print(f"\nrotate {CONNECTIONS} connections: {seconds:.2f} s wall (process included)")
        print("\n".join("  | " + line for line in out.splitlines()))
        assert f"{CONNECTIONS} row(s) rewritten under the first key" in out
        assert await readable_under(conn, TokenCipher(new)) == CONNECTIONS

        # 2. Rotate again (newer first) while another transaction holds the second half of
        # the rows: the run rewrites the first half and waits; kill it there (SIGKILL).
        upper = await conn.fetch("SELECT id FROM connections ORDER BY id OFFSET $1", 5_000)
        held = holder.transaction()
        await held.start()
        await holder.execute(
            "SELECT 1 FROM connections WHERE id = ANY($1::uuid[]) FOR UPDATE",
            [r["id"] for r in upper],
        )
        both = f"{newer},{new}"
        started = time.perf_counter()
        proc = await rotate_process(database_url, both)
        assert proc.stdout is not None
        seen: list[str] = []
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
            assert line, "the rotation ended before waiting for the held rows:\n" + "".join(seen)
            seen.append(line)
            if "waiting for 5000 row(s) locked" in line:
                break
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL
        killed_after = time.perf_counter() - started
        await held.rollback()
        three = TokenCipher(f"{newer},{new}")
        half = await key_positions(conn, three)
        print(f"killed after {killed_after:.2f} s; stored values by key: {half}")
        print("".join("  | " + line for line in seen), end="")
        assert half == {0: CONNECTIONS, 1: CONNECTIONS}  # half the rows: 2 values each

        # 3. Run again: it finds the 5,000 rows left and finishes.
        out, seconds = await run_rotate(database_url, both)
        print(f"re-run after the kill: {seconds:.2f} s wall")
        print("\n".join("  | " + line for line in out.splitlines()))
        assert "5000 row(s) rewritten under the first key, 5000 already under it" in out
        assert await readable_under(conn, TokenCipher(newer)) == CONNECTIONS
    finally:
        await holder.close()
        await conn.close()
