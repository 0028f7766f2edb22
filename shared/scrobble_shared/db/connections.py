"""The connections table: a user's link to one service, with its tokens encrypted; and key
rotation over every stored ciphertext (``scrobble keys rotate|check``).

Rotation (:func:`rotate_stored_tokens`) goes through each table that holds ciphertext in
primary-key order, a batch per transaction: the batch's rows are locked ``FOR UPDATE SKIP
LOCKED`` (a row some other transaction holds is taken up again at the end, waited for up
to a deadline), and each value the first key does not open is rewritten under it; values
already under it are left alone, so a run killed anywhere is finished by the next run.
Values no configured key opens are counted and left as they are: rotation reports, it does
not judge connections (the dispatcher marks those it meets, :func:`mark_tokens_unreadable`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from scrobble_shared.crypto import TokenCipher, TokenDecryptError
from scrobble_shared.db import Conn
from scrobble_shared.service_names import ServiceName

# The reason on a connection whose tokens no configured key opens (CONTRACTS section 4:
# shown as status_reason; the work waits as for any other reconnect).
UNREADABLE_TOKENS_REASON: Final = "its tokens cannot be read with the configured keys; reconnect"
ROTATION_BATCH: Final = 500
# How long rotation waits, at the end, for rows other transactions held when it came by.
BUSY_WAIT_S: Final = 30.0
_BUSY_POLL_S: Final = 0.2

_PUBLIC_COLUMNS = """
    id, user_id, service, enabled, scrobble_threshold_percent, sync_watch_status,
    sync_ratings, last_sync_at, last_sync_status, status
"""
# Only the constant column list above is formatted into these statements.
_INSERT = f"""
    INSERT INTO connections (user_id, service, access_token_enc, refresh_token_enc,
        token_expires_at, scrobble_threshold_percent, sync_watch_status, sync_ratings,
        external_user_name)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING {_PUBLIC_COLUMNS}
"""  # noqa: S608
_SELECT_BY_ID = f"SELECT {_PUBLIC_COLUMNS} FROM connections WHERE id = $1"  # noqa: S608


class ConnectionExists(Exception):
    """The user already has a connection to this service."""


@dataclass(frozen=True)
class Connection:
    """A connection as the API shows it (the original design's ScrobbleConnection); no secrets."""

    id: UUID
    user_id: UUID
    service: str
    enabled: bool
    scrobble_threshold_percent: int
    sync_watch_status: bool
    sync_ratings: bool
    last_sync_at: datetime | None
    last_sync_status: str
    status: str


@dataclass(frozen=True)
class Tokens:
    access_token: str | None
    refresh_token: str | None
    expires_at: datetime | None
    version: int

    def __repr__(self) -> str:  # never let a token reach a log line through repr
        return f"Tokens(expires_at={self.expires_at!r}, version={self.version})"


@dataclass(frozen=True)
class NewConnection:
    user_id: UUID
    service: ServiceName
    access_token: str | None = None
    refresh_token: str | None = None
    token_expires_at: datetime | None = None
    scrobble_threshold_percent: int = 80
    sync_watch_status: bool = False
    sync_ratings: bool = False
    external_user_name: str | None = None


def _encrypt(cipher: TokenCipher, token: str | None) -> bytes | None:
    return None if token is None else cipher.encrypt(token)


async def create_connection(
    db: asyncpg.Connection | asyncpg.Pool, cipher: TokenCipher, new: NewConnection
) -> Connection:
    try:
        row = await db.fetchrow(
            _INSERT,
            new.user_id,
            new.service,
            _encrypt(cipher, new.access_token),
            _encrypt(cipher, new.refresh_token),
            new.token_expires_at,
            new.scrobble_threshold_percent,
            new.sync_watch_status,
            new.sync_ratings,
            new.external_user_name,
        )
    except asyncpg.UniqueViolationError:
        raise ConnectionExists(
            f"user {new.user_id} already has a {new.service} connection"
        ) from None
    assert row is not None
    return Connection(**dict(row))


async def get_connection(
    db: asyncpg.Connection | asyncpg.Pool, connection_id: UUID
) -> Connection | None:
    row = await db.fetchrow(_SELECT_BY_ID, connection_id)
    return None if row is None else Connection(**dict(row))


async def load_tokens(
    db: asyncpg.Connection | asyncpg.Pool, cipher: TokenCipher, connection_id: UUID
) -> Tokens:
    row = await db.fetchrow(
        """SELECT access_token_enc, refresh_token_enc, token_expires_at, token_version
           FROM connections WHERE id = $1""",
        connection_id,
    )
    if row is None:
        raise LookupError(f"no connection {connection_id}")
    access, refresh = row["access_token_enc"], row["refresh_token_enc"]
    return Tokens(
        access_token=None if access is None else cipher.decrypt(access),
        refresh_token=None if refresh is None else cipher.decrypt(refresh),
        expires_at=row["token_expires_at"],
        version=row["token_version"],
    )


async def mark_tokens_unreadable(db: Conn | asyncpg.Pool, connection_id: UUID) -> bool:
    """The connection's tokens open with no configured key: it needs reconnecting, with
    :data:`UNREADABLE_TOKENS_REASON`, and any refresh mark goes (nothing can be spent).
    True when this changed the row (so it is said once, not on every piece of work)."""
    status = await db.execute(
        "UPDATE connections SET status = 'needs_reconnect', status_reason = $2, "
        "refresh_started_at = NULL, refresh_from_version = NULL, updated_at = now() "
        "WHERE id = $1 AND (status <> 'needs_reconnect' OR status_reason IS DISTINCT FROM $2 "
        "OR refresh_started_at IS NOT NULL)",
        connection_id,
        UNREADABLE_TOKENS_REASON,
    )
    return str(status).endswith(" 1")


async def stored_tokens_open(
    db: Conn | asyncpg.Pool, cipher: TokenCipher, connection_id: UUID
) -> bool:
    """True when a configured key opens every token the connection has stored."""
    row = await db.fetchrow(
        "SELECT access_token_enc, refresh_token_enc FROM connections WHERE id = $1",
        connection_id,
    )
    if row is None:
        return False
    values = (row["access_token_enc"], row["refresh_token_enc"])
    return all(v is None or cipher.key_position(v) is not None for v in values)


async def reactivate_readable(db: Conn | asyncpg.Pool, connection_ids: Sequence[UUID]) -> int:
    """Connections marked only because their tokens could not be read (a process ran with
    the wrong keys) whose tokens open now: active again. Returns how many."""
    status = await db.execute(
        "UPDATE connections SET status = 'active', status_reason = NULL, updated_at = now() "
        "WHERE id = ANY($1::uuid[]) AND status = 'needs_reconnect' AND status_reason = $2",
        list(connection_ids),
        UNREADABLE_TOKENS_REASON,
    )
    return int(str(status).rsplit(" ", 1)[-1])


async def reencrypt_tokens(db: asyncpg.Connection, cipher: TokenCipher) -> int:
    """Rewrite the stored tokens under the first key (:func:`rotate_stored_tokens`);
    returns how many connection rows were rewritten."""
    report = await rotate_stored_tokens(db, cipher)
    return next(t.rewritten for t in report.tables if t.table == "connections")


# --- key rotation and the key check --------------------------------------------------------


@dataclass(frozen=True)
class CipherTable:
    """A table that holds ciphertext: its primary key and the columns with Fernet values."""

    table: str
    key: str
    key_type: str
    columns: tuple[str, ...]


# Every place a TOKEN_ENCRYPTION_KEY ciphertext is stored. Only these constant names are
# ever formatted into the statements below.
CIPHER_TABLES: Final = (
    CipherTable("connections", "id", "uuid", ("access_token_enc", "refresh_token_enc")),
    CipherTable("oauth_states", "state", "text", ("code_verifier_enc",)),
)


@dataclass(frozen=True)
class RotationProgress:
    """Where a rotation is: ``done`` of ``total`` rows of ``table`` seen; ``waiting`` is the
    number of rows held by other transactions it is waiting for (0 while it goes through)."""

    table: str
    done: int
    total: int
    rewritten: int
    already_current: int
    unreadable: int
    elapsed_s: float
    waiting: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class TableRotation:
    """What rotation did to one table, in rows (a row counts as rewritten when any of its
    values was; as unreadable when any of its values no key opens)."""

    table: str
    total: int = 0
    done: int = 0
    rewritten: int = 0
    already_current: int = 0
    unreadable: int = 0
    busy: int = 0  # held by other transactions the whole time: not done
    reactivated: int = 0
    elapsed_s: float = 0.0


@dataclass
class RotationReport:
    tables: list[TableRotation] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Every row was seen (those no key opens included); a run again rewrites nothing."""
        return all(t.busy == 0 for t in self.tables)

    @property
    def rewritten(self) -> int:
        return sum(t.rewritten for t in self.tables)

    @property
    def already_current(self) -> int:
        return sum(t.already_current for t in self.tables)

    @property
    def unreadable(self) -> int:
        return sum(t.unreadable for t in self.tables)

    @property
    def busy(self) -> int:
        return sum(t.busy for t in self.tables)

    @property
    def reactivated(self) -> int:
        return sum(t.reactivated for t in self.tables)


Progress = Callable[[RotationProgress], None]


async def rotate_stored_tokens(
    conn: asyncpg.Connection,
    cipher: TokenCipher,
    *,
    batch_size: int = ROTATION_BATCH,
    busy_wait_s: float = BUSY_WAIT_S,
    progress: Progress | None = None,
) -> RotationReport:
    """Rewrite every stored ciphertext the first key does not open under the first key (see
    the module docstring); safe beside running services and beside another rotation."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    report = RotationReport()
    for source in CIPHER_TABLES:
        report.tables.append(
            await _rotate_table(conn, cipher, source, batch_size, busy_wait_s, progress)
        )
    return report


def _any_stored(source: CipherTable) -> str:
    return " OR ".join(f"{column} IS NOT NULL" for column in source.columns)


async def _rotate_table(
    conn: asyncpg.Connection,
    cipher: TokenCipher,
    source: CipherTable,
    batch_size: int,
    busy_wait_s: float,
    progress: Progress | None,
) -> TableRotation:
    started = time.perf_counter()
    result = TableRotation(source.table)
    result.total = await conn.fetchval(
        f"SELECT count(*) FROM {source.table} WHERE {_any_stored(source)}"  # noqa: S608
    )

    def report(waiting: int = 0) -> None:
        result.elapsed_s = time.perf_counter() - started
        if progress is not None:
            progress(
                RotationProgress(
                    source.table,
                    result.done,
                    result.total,
                    result.rewritten,
                    result.already_current,
                    result.unreadable,
                    result.elapsed_s,
                    waiting,
                )
            )

    busy: list[Any] = []
    async for keys in _windows(conn, source, batch_size, [source.key]):
        busy.extend(await _rotate_batch(conn, cipher, source, [k[0] for k in keys], result))
        report()
    if busy:
        report(waiting=len(busy))
    deadline = time.monotonic() + busy_wait_s
    while busy and time.monotonic() < deadline:
        await asyncio.sleep(_BUSY_POLL_S)
        retry, busy = busy, []
        for start in range(0, len(retry), batch_size):
            chunk = retry[start : start + batch_size]
            busy.extend(await _rotate_batch(conn, cipher, source, chunk, result))
        if busy and len(busy) < len(retry):
            report(waiting=len(busy))
    result.busy = len(busy)
    report()
    return result


async def _windows(
    conn: asyncpg.Connection, source: CipherTable, size: int, columns: Sequence[str]
) -> AsyncIterator[list[asyncpg.Record]]:
    """The rows holding ciphertext, ``size`` at a time in key order (keyset pages: each
    page an index range scan, however far into the table), no locks taken."""
    selected = ", ".join(columns)
    first = (
        f"SELECT {selected} FROM {source.table} "  # noqa: S608 - constant names
        f"WHERE {_any_stored(source)} ORDER BY {source.key} LIMIT $1"
    )
    after = (
        f"SELECT {selected} FROM {source.table} "  # noqa: S608 - constant names
        f"WHERE {source.key} > $2 AND ({_any_stored(source)}) ORDER BY {source.key} LIMIT $1"
    )
    rows = await conn.fetch(first, size)
    while rows:
        yield rows
        rows = await conn.fetch(after, size, rows[-1][source.key])


async def _rotate_batch(
    conn: asyncpg.Connection,
    cipher: TokenCipher,
    source: CipherTable,
    keys: Sequence[Any],
    result: TableRotation,
) -> list[Any]:
    """One transaction: lock what nobody else holds, rewrite what needs it. Returns the keys
    it could not lock (held elsewhere, to try again); keys whose row is gone count as done."""
    columns = ", ".join(source.columns)
    extra = ", status, status_reason" if source.table == "connections" else ""
    async with conn.transaction():
        rows = await conn.fetch(
            f"SELECT {source.key}, {columns}{extra} FROM {source.table} "  # noqa: S608
            f"WHERE {source.key} = ANY($1::{source.key_type}[]) "
            f"ORDER BY {source.key} FOR UPDATE SKIP LOCKED",
            list(keys),
        )
        changed: list[list[Any]] = []
        readable_again: list[Any] = []
        for row in rows:
            values = [row[column] for column in source.columns]
            try:
                rewritten = [None if v is None else cipher.reencrypt(v) for v in values]
            except TokenDecryptError:
                result.unreadable += 1
                continue
            marked = extra and row["status"] == "needs_reconnect"
            if marked and row["status_reason"] == UNREADABLE_TOKENS_REASON:
                readable_again.append(row[source.key])
            if all(v is None for v in rewritten):
                result.already_current += 1
                continue
            changed.append(
                [row[source.key]]
                + [old if new is None else new for old, new in zip(values, rewritten, strict=True)]
            )
            result.rewritten += 1
        if changed:
            assignments = ", ".join(f"{c} = v.{c}" for c in source.columns)
            arrays = ", ".join(f"${n}::bytea[]" for n in range(2, len(source.columns) + 2))
            await conn.execute(
                f"UPDATE {source.table} AS t SET {assignments} "  # noqa: S608 - constant names
                f"FROM unnest($1::{source.key_type}[], {arrays}) "
                f"AS v({source.key}, {columns}) WHERE t.{source.key} = v.{source.key}",
                [entry[0] for entry in changed],
                *([entry[i] for entry in changed] for i in range(1, len(source.columns) + 1)),
            )
        if readable_again:
            result.reactivated += await reactivate_readable(conn, readable_again)
    locked = {row[source.key] for row in rows}
    held = await _still_there(conn, source, [k for k in keys if k not in locked])
    result.done += len(keys) - len(held)
    return held


async def _still_there(conn: asyncpg.Connection, source: CipherTable, keys: list[Any]) -> list[Any]:
    """Of rows that could not be locked, those that still exist (a deleted row is done)."""
    if not keys:
        return []
    rows = await conn.fetch(
        f"SELECT {source.key} FROM {source.table} "  # noqa: S608 - constant names
        f"WHERE {source.key} = ANY($1::{source.key_type}[]) AND ({_any_stored(source)})",
        keys,
    )
    return [row[0] for row in rows]


@dataclass(frozen=True)
class ColumnKeys:
    """Which key opens the values of one column: the first, an older one, or none."""

    table: str
    column: str
    under_first: int
    under_older: int
    unreadable: int


@dataclass(frozen=True)
class KeyCheck:
    columns: list[ColumnKeys]
    # Connections with a value no key opens (at most ``sample`` of them), and how many
    # connections are marked as needing reconnect for that reason.
    unreadable_connections: list[UUID]
    marked_unreadable: int

    @property
    def unreadable(self) -> int:
        return sum(c.unreadable for c in self.columns)

    @property
    def under_older(self) -> int:
        return sum(c.under_older for c in self.columns)


async def check_stored_tokens(
    conn: asyncpg.Connection,
    cipher: TokenCipher,
    *,
    batch_size: int = 2000,
    sample: int = 20,
) -> KeyCheck:
    """Try every stored ciphertext with the configured keys; reads only, locks nothing."""
    columns: list[ColumnKeys] = []
    lost: list[UUID] = []
    for source in CIPHER_TABLES:
        counts = {column: [0, 0, 0] for column in source.columns}
        async for rows in _windows(conn, source, batch_size, [source.key, *source.columns]):
            for row in rows:
                opened = True
                for column in source.columns:
                    value = row[column]
                    if value is None:
                        continue
                    position = cipher.key_position(value)
                    slot = 2 if position is None else min(position, 1)
                    counts[column][slot] += 1
                    opened = opened and position is not None
                if not opened and source.table == "connections" and len(lost) < sample:
                    lost.append(row[source.key])
        columns.extend(ColumnKeys(source.table, c, *counts[c]) for c in source.columns)
    marked = await conn.fetchval(
        "SELECT count(*) FROM connections WHERE status = 'needs_reconnect' AND status_reason = $1",
        UNREADABLE_TOKENS_REASON,
    )
    return KeyCheck(columns, lost, marked)
