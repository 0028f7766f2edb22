"""An import of a Trakt connection whose access token has expired (issue 20, point 4): the
worker refreshes it the way delivery does (the refresh token spent once, the new pair
stored before it is used) and the import goes on. Before, the job failed at the first page
with "reconnect trakt" although the refresh token was good. A refresh the service refuses
still ends the job, and the connection says it needs reconnecting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.imports.support import USER, ImportSetup
from tests.integration.imports.test_full_and_incremental import trakt_seed

pytestmark = pytest.mark.integration

PLAYS = 250  # three pages of history


async def connect_with_pair(imports: ImportSetup, *, expired_here: bool) -> tuple[Any, str]:
    """A Trakt connection holding a live pair of the fake's, whose access token the fake
    has since expired; ``expired_here``: our database knows (token_expires_at passed)."""
    pair: dict[str, Any] = imports.sandbox.trakt.oauth.issue_pair("sandbox")
    connection = await imports.gateway.connect(
        USER, "trakt", access_token=pair["access_token"], refresh_token=pair["refresh_token"]
    )
    if expired_here:
        await imports.gateway.sql(
            "UPDATE connections SET token_expires_at = now() - interval '1 minute' WHERE id = $1",
            connection,
        )
    assert imports.sandbox.trakt.state.access.expire(pair["access_token"])
    return connection, pair["refresh_token"]


@pytest.mark.parametrize("expired_here", [True, False], ids=["known-expired", "refused-401"])
async def test_an_expired_trakt_token_is_refreshed_and_the_import_finishes(
    imports: ImportSetup, expired_here: bool
) -> None:
    sb = imports.sandbox
    connection, _ = await connect_with_pair(imports, expired_here=expired_here)
    trakt_seed(sb, 0, PLAYS)
    worker = imports.worker(read_pacing=False)
    done = await imports.run_job(worker)
    assert (done["state"], done["last_error"]) == ("done", None), worker.log_tail()
    assert done["items_added"] == PLAYS
    assert len(sb.trakt.requests("/oauth/token")) == 1  # one refresh, whichever way it came
    history = [r.status for r in sb.trakt.requests("/sync/history")]
    # Known expired: refreshed before the first read; else the first read drew the 401.
    assert history == ([200] * 3 if expired_here else [401] + [200] * 3)
    [row] = await imports.gateway.sql(
        "SELECT status, token_version, access_token_enc, token_expires_at > now() AS fresh "
        "FROM connections WHERE id = $1",
        connection,
    )
    assert (row["status"], row["token_version"], row["fresh"]) == ("active", 1, True)
    stored = imports.gateway.cipher.decrypt(row["access_token_enc"])
    assert sb.trakt.state.access.user_for(stored) == "sandbox"  # the new pair, kept for delivery


async def test_a_refused_refresh_fails_the_import_and_asks_for_a_reconnect(
    imports: ImportSetup,
) -> None:
    sb = imports.sandbox
    connection, refresh_token = await connect_with_pair(imports, expired_here=False)
    sb.trakt.state.refresh.pop(refresh_token)  # spent or revoked at Trakt
    trakt_seed(sb, 0, PLAYS)
    worker = imports.worker(read_pacing=False)
    failed = await imports.run_job(worker)
    reason = "Trakt refused the token refresh (invalid_grant); reconnect Trakt"
    assert (failed["state"], failed["last_error"]) == ("failed", reason), worker.log_tail()
    [row] = await imports.gateway.sql(
        "SELECT status, status_reason FROM connections WHERE id = $1", connection
    )
    assert (row["status"], row["status_reason"]) == ("needs_reconnect", reason)
    assert len(sb.trakt.requests("/oauth/token")) == 1
