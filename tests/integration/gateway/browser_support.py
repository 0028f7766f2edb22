"""What the real-browser connect tests share; holds no tests itself.

A flow is started the way the page or host app does it: by its JavaScript, in the browser
that will then open the authorization URL, with the user's bearer token. The answer's
``Set-Cookie`` lands in that browser's own cookie jar, and that binds the flow to it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from scrobble_shared.trackers.registry import TRACKERS
from tests.integration.gateway.test_connect_support import API, ConnectGateway, auth

CHROMIUM = "/usr/bin/chromium"
TITLES = {t.name: t.title for t in TRACKERS}
# Generous for a loaded machine; a step that passes never waits for it.
STEP_TIMEOUT_MS = 20_000

_START = """async ([url, authorization]) => {
    const answer = await fetch(url, {
        method: "POST",
        headers: {"Authorization": authorization, "Content-Type": "application/json"},
        body: "{}",
    });
    return {status: answer.status, body: await answer.json()};
}"""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def new_page(browser: Browser) -> AsyncIterator[tuple[BrowserContext, Page]]:
    """A page in a browser context of its own: its own cookies, nothing shared."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        yield context, page
    finally:
        await context.close()


async def start_in_browser(
    page: Page, gw: ConnectGateway, user: uuid.UUID, service: str
) -> dict[str, Any]:
    """Start connecting ``service`` from a page of the gateway's origin, as its script
    would; the answer's ``{authorization_url, state}``."""
    await page.goto(f"{gw.url}/healthz")
    answer: dict[str, Any] = await page.evaluate(
        _START, [f"{gw.url}{API}/connect/{service}", auth(user)["Authorization"]]
    )
    assert answer["status"] == 200, answer
    body: dict[str, Any] = answer["body"]
    assert set(body) == {"authorization_url", "state"}
    return body
