"""The account-linking attack, played in a real headless Chromium (RFC 9700 section 4.7).

User A starts connecting a service in A's browser and gets the authorization URL. A hands
it to user B, whose browser (a browser context of its own: its own cookies) opens it, signs
in at the fake as B's account and approves. Without a binding to the browser that started
the flow, the gateway would link B's account at the service to A's user. Here B must land
on the page saying to open the link in the browser that started it, and no connection may
exist for A or for B. Each test prints what happened.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Browser

from scrobble_sandbox import Sandbox
from tests.integration.gateway.browser_support import (
    TITLES,
    new_page,
    start_in_browser,
)
from tests.integration.gateway.test_connect_support import (
    API,
    ConnectGateway,
    exchanges,
    token_owner,
)

pytestmark = pytest.mark.integration

WRONG_BROWSER = "open this link in the browser that started it"


@pytest.mark.parametrize("service", ["trakt", "simkl", "anilist", "lastfm", "librefm"])
async def test_user_b_cannot_finish_a_flow_user_a_started(
    browser: Browser, gw: ConnectGateway, sb: Sandbox, service: str
) -> None:
    user_a, user_b = uuid.uuid4(), uuid.uuid4()
    title = TITLES[service]

    async with new_page(browser) as (_, page_a):
        started = await start_in_browser(page_a, gw, user_a, service)

        async with new_page(browser) as (context_b, page_b):
            await page_b.goto(started["authorization_url"])
            assert await page_b.title() == f"{title} (sandbox)"
            await page_b.fill('input[name="sandbox_user"]', "user-b-at-the-service")
            await page_b.click("#approve")
            await page_b.wait_for_url(f"{gw.url}{API}/{service}/callback?*")
            heading = await page_b.text_content("h1")
            message = await page_b.text_content("p")
            page_text = await page_b.content()
            b_cookies = [c for c in await context_b.cookies() if "scrobble" in c["name"]]

    connections = await gw.connections()
    linked = [
        f"our user {c['user_id']} -> {token_owner(sb, service, gw.access_token(c))!r} at {title}"
        for c in connections
    ]
    print(
        f"\n[{service}] user A ({user_a}) started the flow in browser A; browser B opened the"
        f" authorization URL and approved at the fake as 'user-b-at-the-service'.\n"
        f"[{service}] browser B landed on our callback and saw: {heading!r}\n"
        f"[{service}]   {message!r}\n"
        f"[{service}] token exchanges at the fake: {len(exchanges(sb, service))};"
        f" connections for A: {len(await gw.connections(user_a))},"
        f" for B: {len(await gw.connections(user_b))}, in all: {len(connections)} {linked}"
    )

    assert str(heading).startswith(f"{title} not connected")
    assert WRONG_BROWSER in str(message)
    for private in (str(user_a), started["state"]):
        assert private not in page_text  # the page does not say whose flow it was
    assert b_cookies == []  # B never held A's binding cookie
    assert exchanges(sb, service) == []  # B's code (or token) was never exchanged
    assert connections == []
