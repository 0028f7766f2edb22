"""The page's views against a real gateway and Postgres, read as HTML: each page shows the
signed-in user's own data (an admin's Problems and Media servers show everyone's, marked),
nobody else's, on pages and partials and by guessing ids in URLs; every answer carries the
strict Content-Security-Policy and no inline script; static files are cached by version.
The API routes for a user's own dead work are here too: the page's Retry uses them."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from scrobble_shared.db.sources import create_source
from scrobble_shared.trackers.registry import TRACKERS
from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.page_support import API, Browser, signed_in, text_of

pytestmark = pytest.mark.integration

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
BOB = uuid.UUID("0c8f2a55-1d3e-4b7a-9e21-5a6b7c8d9e10")
PAGES = ("/connections", "/activity", "/problems", "/import", "/media-servers")
PARTIALS = ("/activity/now-playing", "/import/progress")
T0 = datetime.now(UTC) - timedelta(hours=2)


@dataclass
class AliceData:
    connection: uuid.UUID
    sent: uuid.UUID
    dead: uuid.UUID
    job: uuid.UUID
    source: uuid.UUID


async def scrobble(
    gateway: Gateway, connection: uuid.UUID, user: uuid.UUID, title: str, status: str
) -> uuid.UUID:
    errors = {"dead": f"Trakt does not know {title} (404)", "failed": "now playing skipped"}
    content = {"type": "movie", "id": str(uuid.uuid4()), "title": title, "year": 1999}
    rows = await gateway.sql(
        "INSERT INTO scrobbles (connection_id, user_id, service, dedupe_key, kind, content_type,"
        " content_id, request, occurred_at, status, attempts, last_error, sent_at)"
        " VALUES ($1, $2, 'trakt', $3, $4, 'movie', gen_random_uuid(), $5, $6, $7, 1, $8, $9)"
        " RETURNING id",
        connection,
        user,
        f"test:{title}:{status}",
        "now_playing" if status == "failed" else "scrobble",
        json.dumps({"content": content}),
        T0,
        status,
        errors.get(status),
        T0 if status == "sent" else None,
    )
    found: uuid.UUID = rows[0]["id"]
    return found


async def alice_data(gateway: Gateway) -> AliceData:
    connection = await gateway.connect(ALICE, "trakt", external_user_name="alice-at-trakt")
    sent = await scrobble(gateway, connection, ALICE, "Alice Sent Film", "sent")
    dead = await scrobble(gateway, connection, ALICE, "Alice Dead Film", "dead")
    await scrobble(gateway, connection, ALICE, "Alice Failed Film", "failed")
    [job] = await gateway.sql(
        "INSERT INTO import_jobs (connection_id, user_id, service, state, pages_done, "
        "items_seen, items_added) VALUES ($1, $2, 'trakt', 'running', 2, 200, 150) RETURNING id",
        connection,
        ALICE,
    )
    await gateway.sql(
        "INSERT INTO imported_items (connection_id, user_id, service, import_job_id, kind, "
        "content_type, item_key, title, occurred_at) VALUES ($1, $2, 'trakt', $3, 'play', "
        "'movie', 'movie:trakt:1', 'Alice Imported Film', $4)",
        connection,
        ALICE,
        job["id"],
        T0,
    )
    await gateway.sql(
        "INSERT INTO play_sessions (user_id, content_id, content_type, started_at, "
        "last_event_at, last_action, max_progress, content) VALUES ($1, gen_random_uuid(), "
        "'movie', now(), now(), 'progress', 42, $2)",
        ALICE,
        json.dumps({"type": "movie", "title": "Alice Playing Film", "year": 2001}),
    )
    conn = await asyncpg.connect(gateway.database_url)
    try:
        source, _ = await create_source(conn, "jellyfin", "Alice Living Room", ALICE)
    finally:
        await conn.close()
    return AliceData(connection, sent, dead, job["id"], source.id)


ALICE_WORDS = (
    "Alice Sent Film",
    "Alice Dead Film",
    "Alice Failed Film",
    "Alice Imported Film",
    "Alice Playing Film",
    "Alice Living Room",
    "alice-at-trakt",
)


async def page_texts(b: Browser) -> dict[str, str]:
    found = {}
    for path in (*PAGES, *PARTIALS):
        answer = await b.get(path)
        assert answer.status == 200, (path, await answer.text())
        found[path] = await answer.text()
    return found


async def test_each_user_sees_only_their_own_data(gateway: Gateway) -> None:
    data = await alice_data(gateway)
    alice = await signed_in(gateway, ALICE)
    bob = await signed_in(gateway, BOB)
    try:
        mine = await page_texts(alice)
        everything = " ".join(text_of(t) for t in mine.values())
        for word in ALICE_WORDS:
            assert word in everything, word
        assert "Alice Sent Film" in text_of(mine["/activity"])
        assert "Alice Playing Film" in text_of(mine["/activity/now-playing"])
        assert "150 added" in text_of(mine["/import/progress"])
        assert "Alice Dead Film" in text_of(mine["/problems"])
        assert "another user's" not in mine["/problems"]

        theirs = await page_texts(bob)
        for path, html in theirs.items():
            for word in (*ALICE_WORDS, str(data.dead), str(data.connection), str(data.source)):
                assert word not in html, (path, word)
        assert "Nothing has been sent yet" in text_of(theirs["/activity"])
        assert "Nothing is playing right now" in text_of(theirs["/activity/now-playing"])
        assert "Nothing gave up" in text_of(theirs["/problems"])
        assert "No media server yet" in text_of(theirs["/media-servers"])

        # Guessing Alice's ids in URLs, with Bob's session and CSRF token.
        csrf = await bob.csrf()
        guesses = [
            ("POST", f"{API}/dead-letters/replay", {"id": str(data.dead)}, 404),
            ("POST", f"{API}/admin/dead-letters/replay", {"id": str(data.dead)}, 403),
            ("PUT", f"{API}/connections/{data.connection}", {"enabled": False}, 404),
            ("DELETE", f"{API}/connections/{data.connection}", None, 404),
            ("GET", f"{API}/import/jobs/{data.job}", None, 404),
            ("GET", f"{API}/sources/{data.source}", None, 404),
            ("POST", f"{API}/sources/{data.source}/rotate", None, 404),
            ("GET", f"{API}/history?connection_id={data.connection}", None, 404),
        ]
        for method, path, body, status in guesses:
            answer = await bob.api(method, path, csrf, json=body)
            assert answer.status == status, (method, path, await answer.text())
        filtered = await bob.get("/activity?service=trakt&cursor=bogus&status=dead")
        assert "Alice" not in await filtered.text()
        [row] = await gateway.sql(
            "SELECT s.status, c.enabled FROM scrobbles s "
            "JOIN connections c ON c.id = s.connection_id WHERE s.id = $1",
            data.dead,
        )
        assert (row["status"], row["enabled"]) == ("dead", True)
    finally:
        await alice.http.close()
        await bob.http.close()


async def test_an_admin_sees_everyones_problems_and_sources_marked(gateway: Gateway) -> None:
    data = await alice_data(gateway)
    admin = await signed_in(gateway, uuid.uuid4(), admin=True)
    try:
        problems = await (await admin.get("/problems")).text()
        assert "Alice Dead Film" in text_of(problems)
        assert f"another user's: {ALICE}" in text_of(problems)
        assert "Retry everyone's (1, admin)" in text_of(problems)
        assert f"{API}/admin/dead-letters/replay" in problems
        sources = await (await admin.get("/media-servers")).text()
        assert "Alice Living Room" in text_of(sources)
        # Activity stays the admin's own.
        assert "Alice" not in await (await admin.get("/activity")).text()
        csrf = await admin.csrf()
        replayed = await admin.api(
            "POST", f"{API}/admin/dead-letters/replay", csrf, json={"id": str(data.dead)}
        )
        assert replayed.status == 200
        assert (await replayed.json())["replayed"] == 1
    finally:
        await admin.http.close()


async def test_own_dead_letters_list_and_replay(gateway: Gateway) -> None:
    data = await alice_data(gateway)
    bob_trakt = await gateway.connect(BOB, "trakt")
    bob_dead = await scrobble(gateway, bob_trakt, BOB, "Bob Dead Film", "dead")
    listed = await gateway.client.get(f"{API}/dead-letters", headers=gateway.auth(ALICE))
    assert listed.status == 200
    assert [i["id"] for i in (await listed.json())["items"]] == [str(data.dead)]
    bad = await gateway.client.get(
        f"{API}/dead-letters", params={"service": "nope"}, headers=gateway.auth(ALICE)
    )
    assert bad.status == 422
    other = await gateway.client.post(
        f"{API}/dead-letters/replay", json={"id": str(bob_dead)}, headers=gateway.auth(ALICE)
    )
    assert other.status == 404
    everything = await gateway.client.post(
        f"{API}/dead-letters/replay", headers=gateway.auth(ALICE)
    )
    assert (await everything.json()) == {"replayed": 1}
    rows = await gateway.sql("SELECT id, status, attempts FROM scrobbles WHERE status <> 'sent' "
                             "AND kind = 'scrobble' ORDER BY user_id")  # fmt: skip
    assert {(r["id"], r["status"], r["attempts"]) for r in rows} == {
        (data.dead, "retrying", 0),
        (bob_dead, "dead", 1),
    }


def _inline_scripts(html: str) -> list[str]:
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    inline = [body for attrs, body in scripts if "src=" not in attrs or body.strip()]
    handlers = re.findall(r"\son[a-z]+\s*=", html)
    styles = re.findall(r"\sstyle\s*=", html)
    return inline + handlers + styles


async def test_every_page_has_a_strict_csp_and_no_inline_script(gateway: Gateway) -> None:
    await alice_data(gateway)
    alice = await signed_in(gateway, ALICE)
    try:
        for path in (*PAGES, *PARTIALS, "/sign-in"):
            answer = await alice.get(path)
            assert answer.status == 200, path
            csp = answer.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp, path
            assert "'unsafe-inline'" not in csp, path
            assert "frame-ancestors 'none'" in csp
            assert answer.headers["Cache-Control"] == "no-store"
            assert answer.headers["Referrer-Policy"] == "no-referrer"
            assert _inline_scripts(await answer.text()) == [], path
    finally:
        await alice.http.close()


async def test_static_files_are_cached_by_version(gateway: Gateway) -> None:
    alice = await signed_in(gateway, ALICE)
    try:
        html = await (await alice.get("/connections")).text()
        [script] = re.findall(r'src="(/static/page\.js\?v=[0-9a-f]+)"', html)
        [style] = re.findall(r'href="(/static/page\.css\?v=[0-9a-f]+)"', html)
        for url, kind in ((script, "javascript"), (style, "text/css")):
            answer = await alice.get(url)
            assert answer.status == 200
            assert kind in answer.headers["Content-Type"]
            assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            etag = answer.headers["ETag"]
            stale = await alice.get(url.split("?")[0], headers={"If-None-Match": etag})
            assert stale.status == 304
            assert stale.headers["Cache-Control"] == "no-cache"
        assert (await alice.get("/static/../app.py")).status == 404
        assert (await alice.get("/static/nothing.js")).status == 404
    finally:
        await alice.http.close()


async def test_the_connections_page_shows_state_and_reason(gateway: Gateway) -> None:
    await gateway.connect(ALICE, "trakt")
    await gateway.connect(ALICE, "lastfm")
    await gateway.sql("UPDATE connections SET enabled = false WHERE service = 'lastfm'")
    await gateway.sql(
        "UPDATE connections SET status = 'needs_reconnect', status_reason = "
        "'Trakt refused the sign-in (401); reconnect' WHERE service = 'trakt'"
    )
    alice = await signed_in(gateway, ALICE)
    try:
        html = await (await alice.get("/connections")).text()
        text = text_of(html)
        assert 'data-state="needs_reconnect"' in html
        assert "Trakt refused the sign-in (401); reconnect" in text
        assert 'data-state="disabled"' in html
        # Every tracker but the two connected: Simkl, AniList, Libre.fm, ListenBrainz, Maloja.
        assert text.count("Not connected") == len(TRACKERS) - 2 == 5
        # The test gateway has no app credentials: connecting says why, in a sentence.
        assert "Simkl is not configured on this server (no app credentials)." in text
        assert "Counts as watched at (percent)" in text
        assert "half of it or 4 minutes" in text
    finally:
        await alice.http.close()


async def test_activity_pages_and_filters(gateway: Gateway) -> None:
    trakt = await gateway.connect(ALICE, "trakt")
    simkl = await gateway.connect(ALICE, "simkl")
    for n in range(30):
        await scrobble(gateway, trakt, ALICE, f"Paged Film {n:02d}", "sent")
    await scrobble(gateway, simkl, ALICE, "Simkl Film", "sent")
    await scrobble(gateway, trakt, ALICE, "Gave Up Film", "dead")
    alice = await signed_in(gateway, ALICE)
    try:
        first = await (await alice.get("/activity?service=trakt&status=sent")).text()
        rows = re.findall(r'<tr data-id="([0-9a-f-]+)">', first)
        assert len(rows) == 25
        assert "Simkl Film" not in first
        assert "Gave Up Film" not in first
        [older] = re.findall(r'<a href="([^"]+)" rel="next">Older</a>', first)
        older = older.replace("&amp;", "&")
        assert "service=trakt" in older
        assert "status=sent" in older
        second = await (await alice.get(older)).text()
        more = re.findall(r'<tr data-id="([0-9a-f-]+)">', second)
        assert len(more) == 5
        assert not set(rows) & set(more)
        assert 'rel="next"' not in second
        assert ">Newest</a>" in second
        dead = await (await alice.get("/activity?status=dead")).text()
        assert "Gave Up Film" in text_of(dead)
        assert "Trakt does not know Gave Up Film (404)" in text_of(dead)
        assert "Paged Film" not in dead
        none = await (await alice.get("/activity?service=anilist")).text()
        assert "AniList is not connected" in text_of(none)
        odd = await (await alice.get("/activity?service=myspace&status=lost&cursor=x")).text()
        for notice in ("tracker is not one", "status is not one", "page link is not valid"):
            assert notice in text_of(odd), notice
        assert len(re.findall(r'<tr data-id="', odd)) == 25
    finally:
        await alice.http.close()


async def test_maloja_asks_for_the_persons_own_server_listenbrainz_does_not(
    gateway: Gateway,
) -> None:
    """The token form sends what the connect API takes: Maloja's with the server's address."""
    alice = await signed_in(gateway, ALICE)
    try:
        html = await (await alice.get("/connections")).text()
    finally:
        await alice.http.close()
    forms = {
        service: re.search(
            rf'<form class="api-form"[^>]*action="[^"]*/connect/{service}".*?</form>', html, re.S
        )
        for service in ("maloja", "listenbrainz")
    }
    maloja, listenbrainz = forms["maloja"], forms["listenbrainz"]
    assert maloja is not None
    assert listenbrainz is not None
    assert re.search(r'<input id="maloja-api_url" name="api_url" type="url" required', maloja[0])
    assert 'name="token"' in maloja[0]
    assert "Your Maloja API key" in text_of(maloja[0])
    assert 'name="api_url"' not in listenbrainz[0]
    assert "Your ListenBrainz user token" in text_of(listenbrainz[0])
