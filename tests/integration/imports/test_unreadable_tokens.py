"""An import for a connection whose token no configured key opens (issue 15): the job fails
at once with a reason that says so, the connection is marked as needing reconnect with the
same reason, and nothing is asked of the service. Before, the job died without a word,
stayed "running" and was taken over by worker after worker."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from scrobble_shared.crypto import TokenCipher
from scrobble_shared.db.connections import UNREADABLE_TOKENS_REASON
from tests.integration.imports.support import USER, ImportSetup

pytestmark = pytest.mark.integration


async def test_an_import_with_unreadable_tokens_fails_and_asks_for_a_reconnect(
    imports: ImportSetup,
) -> None:
    stranger = TokenCipher(Fernet.generate_key().decode())  # not the worker's key
    [row] = await imports.gateway.sql(
        "INSERT INTO connections (user_id, service, access_token_enc) "
        "VALUES ($1, 'trakt', $2) RETURNING id",
        USER,
        stranger.encrypt(imports.sandbox.env["SANDBOX_TOKEN"]),
    )
    worker = imports.worker(read_pacing=True)
    finished = await imports.run_job(worker)
    assert finished["state"] == "failed", finished
    assert finished["last_error"] == UNREADABLE_TOKENS_REASON
    [connection] = await imports.gateway.sql(
        "SELECT status, status_reason FROM connections WHERE id = $1", row["id"]
    )
    assert (connection["status"], connection["status_reason"]) == (
        "needs_reconnect",
        UNREADABLE_TOKENS_REASON,
    )
    assert imports.sandbox.trakt.requests("/sync/history") == []
    assert "Traceback" not in worker.log_path.read_text(), worker.log_tail()
