"""Acceptance: a real headless Chromium connects Trakt, Simkl, AniList, Last.fm and Libre.fm
through the gateway against the sandbox, with auto-approve off: the page's script starts the
flow (the answer's cookie binds it to this browser), the browser opens the authorization URL,
presses Approve on the fake's consent page, lands on the gateway's success page, and the
connection is then stored with its tokens encrypted. A screenshot of each success page is kept
under ``.local/artifacts/``.

One browser serves the whole module; each test gets a fresh browser context (no cookies
carried from one service's flow into the next).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from scrobble_sandbox import Sandbox
from tests.integration.gateway.browser_support import (
    TITLES,
    new_page,
    start_in_browser,
)
from tests.integration.gateway.test_connect_support import (
    API,
    ConnectGateway,
    auth,
    token_owner,
)
from tests.support.infra import REPO

pytestmark = pytest.mark.integration

ARTIFACTS = REPO / ".local" / "artifacts"


@pytest.mark.parametrize("service", ["trakt", "simkl", "anilist", "lastfm", "librefm"])
async def test_browser_connects(
    browser: Browser, gw: ConnectGateway, sb: Sandbox, service: str
) -> None:
    assert not sb.auto_approve
    user = uuid.uuid4()

    async with new_page(browser) as (context, page):
        started = await start_in_browser(page, gw, user, service)
        [binding] = await context.cookies(f"{gw.url}{API}/{service}/callback")
        assert (binding["httpOnly"], binding["sameSite"]) == (True, "Lax")
        await page.goto(started["authorization_url"])
        assert await page.title() == f"{TITLES[service]} (sandbox)"
        await page.click("#approve")
        await page.wait_for_url(f"{gw.url}{API}/{service}/callback?*")
        heading = await page.text_content("h1")
        screenshot = await _screenshot(page, service)
        left = await context.cookies(f"{gw.url}{API}/{service}/callback")

    assert heading == f"{TITLES[service]} connected"
    assert left == []  # the callback cleared the flow's cookie
    assert screenshot.stat().st_size > 0
    [row] = await gw.connections(user)
    assert (row["service"], row["status"]) == (service, "active")
    token = gw.access_token(row)
    assert token_owner(sb, service, token) == "sandbox"
    assert token.encode() not in bytes(row["access_token_enc"])
    async with httpx.AsyncClient(timeout=10.0) as client:
        listed = await client.get(f"{gw.url}{API}/connections", headers=auth(user))
    assert [c["service"] for c in listed.json()["items"]] == [service]


async def _screenshot(page: Page, service: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"connect-{service}-success.png"
    path.unlink(missing_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    assert path.exists()
    return path
