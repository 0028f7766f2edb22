"""History import from a REAL Maloja server (malojaserver 3.2.3, tests/support/maloja.py):
listens another scrobbler sent it, for earlier times, after it started (which Maloja lists
only when asked with a first day), come back through our reader as imported listens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from scrobble_sandbox.maloja.fake import MalojaFake
from tests.integration.imports.support import USER, ImportSetup
from tests.integration.imports.test_full_and_incremental import run_import
from tests.support.maloja import RealMaloja, running_maloja

pytestmark = pytest.mark.integration

# Whole seconds (Maloja keys scrobbles by second), over several days, all in the past.
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
PLAYED = [BASE + timedelta(days=n, minutes=n) for n in range(6)]


@pytest_asyncio.fixture(loop_scope="session")
async def maloja(tmp_path: Path) -> AsyncIterator[RealMaloja]:
    async with running_maloja(tmp_path) as server:
        yield server


def listen(n: int, at: datetime) -> dict[str, object]:
    return {
        "listened_at": int(at.timestamp()),
        "track_metadata": {
            "artist_name": "Boards of Canada; Aphex Twin" if n == 0 else "Boards of Canada",
            "track_name": f"Track {n}",
            "release_name": "Music Has the Right to Children",
        },
    }


async def test_import_reads_real_malojas_scrobbles(
    imports: ImportSetup, maloja: RealMaloja
) -> None:
    sent = await maloja.submit([listen(n, at) for n, at in enumerate(PLAYED)])
    assert sent.status_code == 200, sent.text
    assert len(await maloja.scrobbles()) == len(PLAYED)
    await imports.gateway.connect(USER, "maloja", access_token=maloja.api_key, api_url=maloja.url)

    done, _, _ = await run_import(imports, "maloja", read_pacing=True)

    assert done["items_added"] == len(PLAYED), maloja.log_tail()
    conn = await asyncpg.connect(imports.gateway.database_url)
    try:
        rows = await conn.fetch(
            "SELECT kind, content_type, title, occurred_at FROM imported_items "
            "WHERE service = 'maloja' ORDER BY occurred_at"
        )
    finally:
        await conn.close()
    assert [(r["kind"], r["content_type"]) for r in rows] == [("play", "track")] * len(PLAYED)
    assert [r["occurred_at"] for r in rows] == PLAYED
    assert [r["title"] for r in rows] == [f"Track {n}" for n in range(len(PLAYED))]
    # Every page came from the real server, none from the fake.
    assert imports.sandbox.fake("maloja", MalojaFake).requests("/") == []
