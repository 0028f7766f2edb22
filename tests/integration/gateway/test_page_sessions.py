"""The page's sessions against a real gateway and Postgres: sign-in links (once, 15
minutes, asked before spent), the cookie's attributes and rotation, sign-out ending the
session in the database, idle and absolute expiry, ``POST /session`` with a bearer token,
and CSRF: a cookie never counts on the API without the session's token."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.gateway.conftest import Gateway
from tests.integration.gateway.page_support import (
    ADMIN,
    API,
    LOGIN_LINKS,
    browser,
    form,
    make_link,
    set_cookie_headers,
    signed_in,
    text_of,
)

pytestmark = pytest.mark.integration

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
COOKIE = "scrobble_session"


async def test_a_link_signs_in_once_and_opens_a_session_cookie(gateway: Gateway) -> None:
    link = await make_link(gateway, ALICE)
    async with browser(gateway) as b:
        page = await b.get(link)
        assert page.status == 200
        assert "Sign in" in await page.text()
        # Opening the link (a mail scanner would) does not spend it.
        again = await b.get(link)
        assert again.status == 200
        answer = await b.sign_in(link)
        assert answer.status == 303
        assert answer.headers["Location"] == "/connections"
        [cookie] = [c for c in set_cookie_headers(answer) if c.startswith(f"{COOKIE}=")]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "max-age", "samesite"} <= attributes
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in attributes  # the test gateway's public URL is http
        connections = await b.get("/connections")
        assert connections.status == 200
        assert "Connections" in await connections.text()

    async with browser(gateway) as other:
        used = await other.get(link)
        assert used.status == 400
        assert "has been used" in text_of(await used.text())
        assert other.cookie(COOKIE) is None
    rows = await gateway.sql("SELECT user_id, roles FROM page_sessions")
    assert [(r["user_id"], r["roles"]) for r in rows] == [(ALICE, [])]


async def test_a_link_opened_in_two_browsers_signs_in_only_one(gateway: Gateway) -> None:
    link = await make_link(gateway, ALICE)
    async with browser(gateway) as first, browser(gateway) as second:
        forms = []
        for b in (first, second):
            page = await b.get(link)
            forms.append(form(await page.text(), "/sign-in"))
        assert (await first.post("/sign-in", data=forms[0])).status == 303
        late = await second.post("/sign-in", data=forms[1])
        assert late.status == 400
        assert "has been used" in text_of(await late.text())
        assert second.cookie(COOKIE) is None
        # The first browser's form, posted again, is refused too (its cookie went).
        assert (await first.post("/sign-in", data=forms[0])).status == 403


async def test_an_expired_or_unknown_link_says_so(gateway: Gateway) -> None:
    link = await make_link(gateway, ALICE)
    await gateway.sql("UPDATE login_links SET created_at = now() - interval '20 minutes', "
                      "expires_at = now() - interval '5 minutes'")  # fmt: skip
    async with browser(gateway) as b:
        expired = await b.get(link)
        assert expired.status == 410
        assert "15 minutes" in text_of(await expired.text())
        unknown = await b.get("/sign-in?token=not-a-token-we-made")
        assert unknown.status == 400
        assert "not recognised" in text_of(await unknown.text())
        assert b.cookie(COOKIE) is None


async def test_the_sign_in_form_works_only_in_the_browser_that_was_shown_it(
    gateway: Gateway,
) -> None:
    link = await make_link(gateway, ALICE)
    async with browser(gateway) as shown, browser(gateway) as elsewhere:
        page = await shown.get(link)
        fields = form(await page.text(), "/sign-in")
        # Another site posting the form for a visitor: the visitor's browser lacks the
        # form's cookie, so it is refused and the link stays usable.
        refused = await elsewhere.post("/sign-in", data=fields)
        assert refused.status == 403
        assert elsewhere.cookie(COOKIE) is None
        accepted = await shown.post("/sign-in", data=fields)
        assert accepted.status == 303


async def test_signing_in_again_rotates_the_cookie_and_ends_the_old_session(
    gateway: Gateway,
) -> None:
    async with browser(gateway) as b:
        await b.sign_in(await make_link(gateway, ALICE))
        first = b.cookie(COOKIE)
        await b.sign_in(await make_link(gateway, ALICE))
        second = b.cookie(COOKIE)
        assert first
        assert second
        assert first != second
    async with browser(gateway) as stolen:
        stolen.http.cookie_jar.update_cookies({COOKIE: first}, stolen.gateway.client.make_url("/"))
        answer = await stolen.get("/connections")
        assert answer.status == 303
        assert answer.headers["Location"] == "/sign-in"


async def test_sign_out_ends_the_session_on_the_server(gateway: Gateway) -> None:
    b = await signed_in(gateway, ALICE)
    try:
        csrf = await b.csrf()
        value = b.cookie(COOKIE)
        assert value is not None
        out = await b.post("/sign-out", data={"csrf_token": csrf})
        assert out.status == 303
        assert out.headers["Location"] == "/sign-in?signed_out=1"
        [ended] = await gateway.sql("SELECT ended_at FROM page_sessions")
        assert ended["ended_at"] is not None
    finally:
        await b.http.close()
    # The old cookie, kept by someone, opens nothing any more: page nor API.
    async with browser(gateway) as replay:
        replay.http.cookie_jar.update_cookies({COOKIE: value}, replay.gateway.client.make_url("/"))
        page = await replay.get("/connections")
        assert page.status == 303
        api = await replay.api("GET", f"{API}/connections", csrf)
        assert api.status == 401


async def test_sign_out_without_the_csrf_token_is_refused(gateway: Gateway) -> None:
    b = await signed_in(gateway, ALICE)
    try:
        refused = await b.post("/sign-out", data={})
        assert refused.status == 403
        assert "security token" in text_of(await refused.text())
        still = await b.get("/connections")
        assert still.status == 200
    finally:
        await b.http.close()


async def test_idle_and_absolute_expiry_end_a_session(gateway: Gateway) -> None:
    b = await signed_in(gateway, ALICE)
    try:
        assert (await b.get("/connections")).status == 200
        # Idle: last seen longer ago than GATEWAY_SESSION_IDLE_TIMEOUT (1 hour).
        await gateway.sql("UPDATE page_sessions SET last_seen_at = now() - interval '61 minutes'")
        assert (await b.get("/connections")).status == 303
        await gateway.sql("UPDATE page_sessions SET last_seen_at = now()")
        assert (await b.get("/connections")).status == 200
        # Absolute: past GATEWAY_SESSION_MAX_AGE, however busy.
        await gateway.sql(
            "UPDATE page_sessions SET created_at = now() - interval '13 hours', "
            "expires_at = now() - interval '1 hour'"
        )
        assert (await b.get("/connections")).status == 303
    finally:
        await b.http.close()


async def test_the_api_takes_the_cookie_only_with_the_csrf_token(gateway: Gateway) -> None:
    await gateway.connect(ALICE, "trakt")
    b = await signed_in(gateway, ALICE)
    try:
        csrf = await b.csrf()
        ok = await b.api("GET", f"{API}/connections", csrf)
        assert ok.status == 200
        assert [c["service"] for c in (await ok.json())["items"]] == ["trakt"]
        for token in (None, "", "wrong-token", csrf[:-1]):
            refused = await b.api("GET", f"{API}/connections", token)
            assert refused.status == 403, token
            assert "CSRF" in (await refused.json())["detail"]
        # A form another site posts to the API: the cookie goes along, the header cannot.
        posted = await b.post(f"{API}/import/trakt", data={"full": "true"})
        assert posted.status == 403
        assert await gateway.sql("SELECT id FROM import_jobs") == []
        cross = await b.request(
            "GET",
            f"{API}/connections",
            headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status == 403
    finally:
        await b.http.close()


async def test_admin_routes_need_an_admin_session(gateway: Gateway) -> None:
    user = await signed_in(gateway, ALICE)
    admin = await signed_in(gateway, uuid.uuid4(), admin=True)
    try:
        dead = f"{API}/admin/dead-letters"
        assert (await user.api("GET", dead, await user.csrf())).status == 403
        assert (await admin.api("GET", dead, await admin.csrf())).status == 200
    finally:
        await user.http.close()
        await admin.http.close()


async def test_post_session_with_a_bearer_token_opens_a_session(gateway: Gateway) -> None:
    async with browser(gateway) as b:
        answer = await b.post("/session", headers=gateway.auth(ALICE, "admin"))
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        assert body["user_id"] == str(ALICE)
        assert body["admin"] is True
        assert answer.headers["Cache-Control"] == "no-store"
        page = await b.get("/connections")
        assert page.status == 200
        assert "admin" in text_of(await page.text())
        # A session cannot open another one: only a bearer token can.
        csrf = await b.csrf()
        refused = await b.api("POST", "/session", csrf)
        assert refused.status == 401
    async with browser(gateway) as nobody:
        assert (await nobody.post("/session")).status == 401


async def test_login_links_route_is_for_admins_and_never_logs_the_link(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"user_id": str(ALICE)}
    refused = await gateway.client.post(LOGIN_LINKS, json=body, headers=gateway.auth(ALICE))
    assert refused.status == 403
    with caplog.at_level(logging.DEBUG):
        made = await gateway.client.post(
            LOGIN_LINKS, json=body, headers=gateway.auth(ADMIN, "admin")
        )
    assert made.status == 201
    link = await made.json()
    token = link["url"].split("token=", 1)[1]
    assert link["admin"] is False
    assert token not in caplog.text
    assert str(ALICE) in caplog.text  # the line is there, without the link
    [row] = await gateway.sql("SELECT token_hash, user_id FROM login_links")
    assert row["user_id"] == ALICE
    assert token.encode() not in bytes(row["token_hash"])
    bad = await gateway.client.post(
        LOGIN_LINKS, json={"user_id": "nope"}, headers=gateway.auth(ADMIN, "admin")
    )
    assert bad.status == 422


async def test_pages_without_a_session_send_the_browser_to_sign_in(gateway: Gateway) -> None:
    async with browser(gateway) as b:
        for path in ("/connections", "/activity", "/problems", "/import", "/media-servers"):
            answer = await b.get(path)
            assert answer.status == 303, path
            assert answer.headers["Location"] == "/sign-in"
        for partial in ("/activity/now-playing", "/import/progress"):
            answer = await b.get(partial)
            assert answer.status == 401, partial
            assert "session has ended" in await answer.text()
        home = await b.get("/")
        assert home.headers["Location"] == "/connections"


async def test_scrobble_login_link_prints_a_link_that_signs_in(gateway: Gateway) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": gateway.database_url,
        "GATEWAY_PUBLIC_URL": "https://scrobble.example.test",
    }
    ran = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).with_name("scrobble")), "login-link", "--user", str(ALICE)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    url = ran.stdout.strip()
    assert url.startswith("https://scrobble.example.test/sign-in?token=")
    assert f"signs in user {ALICE} once, until" in ran.stderr
    async with browser(gateway) as b:
        answer = await b.sign_in(url.removeprefix("https://scrobble.example.test"))
        assert answer.status == 303
        assert (await b.get("/connections")).status == 200
    [row] = await gateway.sql("SELECT user_id, admin, used_at FROM login_links")
    assert (row["user_id"], row["admin"]) == (ALICE, False)
    assert row["used_at"] is not None
