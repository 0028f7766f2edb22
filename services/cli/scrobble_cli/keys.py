"""``scrobble keys rotate|check``: the keys of ``TOKEN_ENCRYPTION_KEY`` and the ciphertexts
stored under them (connections' tokens, OAuth states' PKCE verifiers).

``rotate`` rewrites every stored value the first key does not open under the first key, a
batch per transaction, printing progress (rows done of all, rows/s) and a final count. It
is resumable by construction: values already under the first key are left alone, so a run
that was killed is finished by the next. Rows other transactions hold are taken up again at
the end and waited for up to ``--busy-wait``; rows still held then make it exit 1 (run it
again). Values no configured key opens are counted, left alone, and named by ``check``.

``check`` reads every stored value and says, per column, how many the first key opens, how
many only an older key opens, and how many none opens; it exits 1 when any is unreadable.
Neither ever prints a token or a key.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg

from scrobble_cli.commands import CommandError
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connect import connect, describe_target
from scrobble_shared.db.connections import (
    BUSY_WAIT_S,
    ROTATION_BATCH,
    KeyCheck,
    RotationProgress,
    RotationReport,
    check_stored_tokens,
    rotate_stored_tokens,
)
from scrobble_shared.settings import Settings, load_settings

# Progress lines at most this often (and after the first batch, and at each table's end).
PROGRESS_EVERY_S = 1.0
_DB_TROUBLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def add_parser(sub: Any) -> None:
    """``scrobble keys`` and its subcommands, on the main parser's subparsers."""
    keys = sub.add_parser(
        "keys", help="rotate stored tokens to the first TOKEN_ENCRYPTION_KEY, or check them"
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    rotate = keys_sub.add_parser(
        "rotate",
        help="re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEY",
        description="Put the new key first in TOKEN_ENCRYPTION_KEY (the old ones after it) "
        "on every service, then run this. Resumable: run it again after any interruption.",
    )
    rotate.add_argument(
        "--batch-size",
        type=int,
        default=ROTATION_BATCH,
        help=f"rows per transaction (default {ROTATION_BATCH})",
    )
    rotate.add_argument(
        "--busy-wait",
        type=float,
        default=BUSY_WAIT_S,
        metavar="SECONDS",
        help="how long to wait, at the end, for rows other transactions hold "
        f"(default {BUSY_WAIT_S:.0f})",
    )
    rotate.set_defaults(handler=keys_rotate)
    check = keys_sub.add_parser(
        "check", help="count stored tokens per key; exit 1 when some open with no key"
    )
    check.set_defaults(handler=keys_check)


def _cipher(settings: Settings) -> TokenCipher:
    """The configured keys, parsed before anything connects (a bad one exits 2)."""
    settings.require("token_encryption_key")
    assert settings.token_encryption_key is not None
    return TokenCipher(settings.token_encryption_key.get_secret_value())


class _Printer:
    """Progress lines, at most one a second, but always the first, every change of what is
    waited for, and each table's last."""

    def __init__(self) -> None:
        self._last_line = 0.0
        self._last_waiting: dict[str, int] = {}

    def __call__(self, p: RotationProgress) -> None:
        now = time.monotonic()
        if p.waiting:
            if self._last_waiting.get(p.table) != p.waiting:
                self._last_waiting[p.table] = p.waiting
                _say(f"{p.table}: waiting for {p.waiting} row(s) locked by other transactions")
            return
        first = self._last_line == 0.0
        if first or now - self._last_line >= PROGRESS_EVERY_S:
            self._last_line = now
            _say(
                f"{p.table}: {p.done}/{p.total} rows, {p.rewritten} rewritten, "
                f"{p.already_current} already under the first key, {p.unreadable} no key "
                f"opens ({p.rows_per_s:.0f} rows/s)"
            )


def _say(line: str) -> None:
    print(line, flush=True)


async def _rotate(
    settings: Settings, cipher: TokenCipher, args: argparse.Namespace
) -> RotationReport:
    conn = await connect(settings.database_url)
    try:
        return await rotate_stored_tokens(
            conn,
            cipher,
            batch_size=args.batch_size,
            busy_wait_s=args.busy_wait,
            progress=_Printer(),
        )
    except _DB_TROUBLE as exc:
        raise CommandError(
            f"Postgres failed during the rotation ({type(exc).__name__}: {exc}); "
            "what was rewritten stays rewritten: run `scrobble keys rotate` again"
        ) from None
    finally:
        await conn.close()


def keys_rotate(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    if args.busy_wait < 0:
        raise CommandError("--busy-wait must not be negative")
    settings = load_settings()
    cipher = _cipher(settings)
    _say(
        f"rotating stored tokens at {describe_target(settings.database_url)} to the first of "
        f"{cipher.key_count} key(s) in TOKEN_ENCRYPTION_KEY, {args.batch_size} rows per "
        "transaction"
    )
    started = time.perf_counter()
    report = asyncio.run(_rotate(settings, cipher, args))
    seconds = time.perf_counter() - started
    for table in report.tables:
        rate = table.done / table.elapsed_s if table.elapsed_s > 0 else 0.0
        _say(
            f"{table.table}: {table.done}/{table.total} rows in {table.elapsed_s:.2f} s "
            f"({rate:.0f} rows/s): {table.rewritten} rewritten, {table.already_current} "
            f"already under the first key, {table.unreadable} no key opens"
            + (f", {table.busy} still locked" if table.busy else "")
        )
    if report.reactivated:
        _say(
            f"{report.reactivated} connection(s) marked only because their tokens could not "
            "be read open now: active again"
        )
    _say(
        f"done in {seconds:.2f} s: {report.rewritten} row(s) rewritten under the first key, "
        f"{report.already_current} already under it"
    )
    if report.unreadable:
        _say(
            f"{report.unreadable} row(s) no configured key opens: left as they are "
            "(`scrobble keys check` names them)"
        )
    if not report.finished:
        raise CommandError(
            f"not finished: {report.busy} row(s) stayed locked by other transactions for "
            f"{args.busy_wait:g} s; run `scrobble keys rotate` again"
        )
    return 0


async def _check(settings: Settings, cipher: TokenCipher) -> KeyCheck:
    conn = await connect(settings.database_url)
    try:
        return await check_stored_tokens(conn, cipher)
    except _DB_TROUBLE as exc:
        raise CommandError(
            f"Postgres failed during the check ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        await conn.close()


def keys_check(_: argparse.Namespace) -> int:
    settings = load_settings()
    cipher = _cipher(settings)
    found = asyncio.run(_check(settings, cipher))
    for column in found.columns:
        total = column.under_first + column.under_older + column.unreadable
        _say(
            f"{column.table}.{column.column}: {total} value(s): {column.under_first} under "
            f"the first key, {column.under_older} under an older key, {column.unreadable} "
            "no key opens"
        )
    _say(
        "connections needing reconnect because their tokens could not be read: "
        f"{found.marked_unreadable}"
    )
    if found.under_older:
        _say(
            f"{found.under_older} value(s) open only with an older key: run "
            "`scrobble keys rotate` before taking that key out of TOKEN_ENCRYPTION_KEY"
        )
    if found.unreadable:
        shown = ", ".join(str(c) for c in found.unreadable_connections)
        if shown:
            _say(f"connections with a value no key opens (up to 20): {shown}")
        raise CommandError(
            f"{found.unreadable} stored value(s) no configured key opens: the key that "
            "encrypted them is missing from TOKEN_ENCRYPTION_KEY, or they are damaged "
            "(their connections must reconnect)"
        )
    return 0
