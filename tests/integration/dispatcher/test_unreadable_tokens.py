"""A connection whose tokens no configured key opens (issue 15), in one batch with others:
the dispatcher (a process, real Kafka, Postgres and the sandbox) marks that connection as
needing reconnect with a reason that says so, its work waits as for any reconnect, and every
other user's work of the same batch is delivered. Before, one such row failed the whole
coalesced batch, which was rewound again and again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cryptography.fernet import Fernet

from scrobble_sandbox import Sandbox
from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import UNREADABLE_TOKENS_REASON
from tests.integration.dispatcher.test_delivery import KEY, dispatcher, sandbox
from tests.integration.dispatcher.test_token_refresh import Setup, sb, setup
from tests.support.events import event
from tests.support.ingest import IngestSetup

pytestmark = pytest.mark.integration
# The fixtures, shared with test_delivery (a dispatcher process) and test_token_refresh
# (a Deliverer in-process, with its own connections' key).
__all__ = ["sandbox", "sb", "setup"]

GOOD_USERS = 8
LOST_KEY = Fernet.generate_key().decode()  # a key the dispatcher is not given


async def add_trakt_connection(
    setup: IngestSetup,
    user: uuid.UUID,
    access: bytes,
    refresh: bytes | None = None,
    expires_at: datetime | None = None,
) -> uuid.UUID:
    conn = await asyncpg.connect(setup.database_url)
    try:
        connection_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO connections (user_id, service, access_token_enc, refresh_token_enc, "
            "token_expires_at) VALUES ($1, 'trakt', $2, $3, $4) RETURNING id",
            user,
            access,
            refresh,
            expires_at,
        )
        return connection_id
    finally:
        await conn.close()


async def outcomes(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT s.user_id, s.status, s.last_error, s.next_attempt_at, c.id AS connection, "
            "c.status AS connection_status, c.status_reason "
            "FROM scrobbles s JOIN connections c ON c.id = s.connection_id"
        )
    finally:
        await conn.close()


async def wait_for_outcomes(dsn: str, n: int, deadline_s: float = 60) -> list[asyncpg.Record]:
    """Poll until all ``n`` rows are past their first delivery: sent, or put back to wait
    (retrying) for a connection that needs reconnecting; at the deadline, what there is."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while True:
        rows = await outcomes(dsn)
        settled = [
            r
            for r in rows
            if r["status"] == "sent"
            or (r["status"] == "retrying" and r["connection_status"] == "needs_reconnect")
        ]
        if len(settled) == n or loop.time() > until:
            return rows
        await asyncio.sleep(0.3)


async def test_unreadable_tokens_wait_for_a_reconnect_and_the_rest_of_the_batch_goes(
    ingest_setup: IngestSetup, sandbox: Sandbox
) -> None:
    setup, sb = ingest_setup, sandbox
    sb.reset()
    # Every connection here holds the one sandbox account's token, so the fake would pace
    # them all as one Trakt user (1 write/s); ours are different users, paced each alone.
    sb.disable_rate_limits()
    token = sb.env["SANDBOX_TOKEN"]
    ours, lost = TokenCipher(KEY), TokenCipher(LOST_KEY)
    good = [uuid.uuid4() for _ in range(GOOD_USERS)]
    for user in good:
        await add_trakt_connection(setup, user, ours.encrypt(token))
    # One whose access token no key opens; one whose access token is fine but expired and
    # whose refresh token no key opens (found only when it is about to be spent).
    unreadable_user, unreadable_refresh_user = uuid.uuid4(), uuid.uuid4()
    unreadable = await add_trakt_connection(setup, unreadable_user, lost.encrypt(token))
    expired = datetime.now(UTC) - timedelta(hours=1)
    unreadable_refresh = await add_trakt_connection(
        setup, unreadable_refresh_user, ours.encrypt(token), lost.encrypt("refresh"), expired
    )
    users = [*good[:4], unreadable_user, *good[4:], unreadable_refresh_user]
    # All queued before the dispatcher starts: they arrive in one batch of the consumer.
    await setup.publish_plays([event("stop", 9_500_000, user=str(u)) for u in users])
    dispatch = dispatcher(setup, sb)
    async with setup.running(setup.process(), dispatch):
        rows = await wait_for_outcomes(setup.database_url, len(users))
    log = dispatch.log_path.read_text()
    by_user = {r["user_id"]: r for r in rows}
    assert len(by_user) == len(users), rows
    for user in good:
        assert by_user[user]["status"] == "sent", (by_user[user], dispatch.log_tail())
    assert len(sb.trakt.requests("/scrobble/stop")) == GOOD_USERS
    for user, connection_id in (
        (unreadable_user, unreadable),
        (unreadable_refresh_user, unreadable_refresh),
    ):
        row = by_user[user]
        assert row["connection"] == connection_id
        assert (row["connection_status"], row["status_reason"]) == (
            "needs_reconnect",
            UNREADABLE_TOKENS_REASON,
        )
        # The work waits for the reconnect (an hour ahead), as for any other reconnect.
        assert row["status"] == "retrying"
        assert row["last_error"] == UNREADABLE_TOKENS_REASON
        assert row["next_attempt_at"] > datetime.now(UTC) + timedelta(minutes=50)
    assert "batch failed" not in log, dispatch.log_tail()
    assert "Traceback" not in log, dispatch.log_tail()
    assert len(sb.trakt.requests("/oauth/token")) == 0  # nothing spent with a token no key opens


async def test_a_connection_marked_for_its_keys_is_active_again_once_they_open_its_tokens(
    setup: Setup,
) -> None:
    """A dispatcher ran with the wrong keys and marked connections; with the right keys the
    next work of each finds its tokens open: it is active again and the work goes out.
    One whose tokens still open with no key keeps waiting."""
    pair = setup.pair()
    later = datetime.now(UTC) + timedelta(days=7)
    fine = await setup.connect(pair["access_token"], pair["refresh_token"], later)
    still_lost = await setup.pool.fetchval(
        "INSERT INTO connections (user_id, service, access_token_enc) "
        "VALUES ($1, 'trakt', $2) RETURNING id",
        uuid.uuid4(),
        TokenCipher(LOST_KEY).encrypt("t"),
    )
    for connection_id in (fine, still_lost):
        await setup.pool.execute(
            "UPDATE connections SET status = 'needs_reconnect', status_reason = $2 WHERE id = $1",
            connection_id,
            UNREADABLE_TOKENS_REASON,
        )

    assert await setup.attempt(await setup.queue(fine)) == "done"
    waiting = await setup.queue(still_lost)
    assert await setup.attempt(waiting) == "waiting"

    rows = {
        r["id"]: (r["status"], r["status_reason"])
        for r in await setup.pool.fetch("SELECT id, status, status_reason FROM connections")
    }
    assert rows[fine] == ("active", None)
    assert rows[still_lost] == ("needs_reconnect", UNREADABLE_TOKENS_REASON)
    assert (await setup.scrobble(waiting))["last_error"] == UNREADABLE_TOKENS_REASON
