"""A browser flow is bound to the browser that started it (RFC 9700 section 4.7): starting
sets a short-lived, HttpOnly, SameSite=Lax cookie carrying a nonce bound to the state, and
the callback finishes only with that cookie. Two httpx clients play two browsers, each with
its own cookie jar; the real gateway app talks to the sandbox's fakes.

The same attack in a real Chromium is in ``test_account_linking.py``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio

from scrobble_sandbox import Sandbox
from scrobble_shared.trackers.registry import TRACKERS
from tests.integration.gateway.openapi_check import check_answer
from tests.integration.gateway.test_connect_support import (
    API,
    HTML,
    ConnectGateway,
    callback_url,
    decide,
    exchanges,
    serve_gateway,
    set_cookies,
)
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

BROWSER_SERVICES = ("trakt", "simkl", "anilist", "lastfm", "librefm")
TITLES = {t.name: t.title for t in TRACKERS}
WRONG_BROWSER = "open this link in the browser that started it"


def new_browser() -> httpx.AsyncClient:
    """A browser of its own: its own cookie jar, nothing followed by itself."""
    return httpx.AsyncClient(timeout=10.0, follow_redirects=False)


@pytest_asyncio.fixture(loop_scope="session")
async def first() -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser() as browser:
        yield browser


@pytest_asyncio.fixture(loop_scope="session")
async def second() -> AsyncIterator[httpx.AsyncClient]:
    async with new_browser() as browser:
        yield browser


def without_query_parameter(url: str, name: str) -> str:
    parts = urlsplit(url)
    kept = [(k, v) for k, vs in parse_qs(parts.query).items() if k != name for v in vs]
    return urlunsplit(parts._replace(query=urlencode(kept)))


# --- the cookie ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", BROWSER_SERVICES)
async def test_starting_sets_a_short_lived_http_only_cookie_for_the_callback(
    gw: ConnectGateway, first: httpx.AsyncClient, service: str
) -> None:
    answer = await gw.start(first, uuid.uuid4(), service)

    assert answer.status_code == 200, answer.text
    [(name, cookie)] = set_cookies(answer).items()
    assert name.startswith("scrobble_oauth")
    assert cookie["path"] == f"{API}/{service}/callback"
    assert cookie["max-age"] == "600"  # the state's lifetime
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # GATEWAY_PUBLIC_URL is http here
    assert not cookie["domain"]  # this host only
    assert len(cookie.value) >= 43  # 256 random bits, url-safe
    assert cookie.value not in answer.text
    [row] = await gw.sql("SELECT browser_nonce_hash FROM oauth_states")
    stored = bytes(row["browser_nonce_hash"])
    assert stored == hashlib.sha256(cookie.value.encode()).digest()  # only its hash is kept


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    infra: Infra, database_url: str, sb: Sandbox, first: httpx.AsyncClient
) -> None:
    async with serve_gateway(
        infra, database_url, sb, GATEWAY_PUBLIC_URL="https://scrobble.example"
    ) as gw:
        answer = await gw.start(first, uuid.uuid4(), "simkl")

    assert answer.status_code == 200, answer.text
    [cookie] = set_cookies(answer).values()
    assert cookie["secure"] is True
    assert cookie["path"] == f"{API}/simkl/callback"


async def test_the_callback_clears_the_cookie_it_was_given(
    gw: ConnectGateway, sb: Sandbox, first: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    started = await gw.start(first, uuid.uuid4(), "anilist")
    [name] = set_cookies(started)
    [other] = set_cookies(await gw.start(first, uuid.uuid4(), "anilist"))
    back = await callback_url(first, started.json()["authorization_url"])

    page = await first.get(back, headers=HTML)

    assert page.status_code == 200, page.text
    assert name != other
    [(cleared, cookie)] = set_cookies(page).items()  # this flow's cookie, not the other's
    assert cleared == name
    assert (cookie["max-age"], cookie["path"]) == ("0", f"{API}/anilist/callback")


# --- another browser ----------------------------------------------------------------------


@pytest.mark.parametrize("service", BROWSER_SERVICES)
async def test_a_callback_in_another_browser_is_refused_and_the_link_still_works_in_the_first(
    gw: ConnectGateway,
    sb: Sandbox,
    first: httpx.AsyncClient,
    second: httpx.AsyncClient,
    service: str,
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    answer = await gw.start(first, user, service)
    state = answer.json()["state"]
    back = await callback_url(second, answer.json()["authorization_url"])

    refused = await second.get(back, headers=HTML)

    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert f"{TITLES[service]} not connected" in refused.text
    assert WRONG_BROWSER in refused.text
    for private in (str(user), state):
        assert private not in refused.text  # nothing says whose flow it was
    assert exchanges(sb, service) == []  # the code (or token) was never used
    assert await gw.connections() == []
    [row] = await gw.sql("SELECT used_at FROM oauth_states")
    assert row["used_at"] is None

    # The same address in the browser that started it finishes the flow.
    done = await first.get(back, headers=HTML)

    assert done.status_code == 200, done.text
    assert f"{TITLES[service]} connected" in done.text
    [connection] = await gw.connections()
    assert connection["user_id"] == user


async def test_another_browser_gets_problem_json_when_it_does_not_ask_for_html(
    gw: ConnectGateway, sb: Sandbox, first: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    back = await callback_url(second, await gw.authorization_url(first, uuid.uuid4(), "trakt"))

    refused = await second.get(back)

    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert WRONG_BROWSER in refused.json()["detail"]
    check_answer(
        "GET", f"{API}/{{service}}/callback", 403, "application/problem+json", refused.content
    )
    assert await gw.connections() == []


async def test_a_cookie_with_the_right_name_and_another_value_does_not_fit(
    gw: ConnectGateway, sb: Sandbox, first: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    answer = await gw.start(first, uuid.uuid4(), "simkl")
    [(name, cookie)] = set_cookies(answer).items()
    back = await callback_url(second, answer.json()["authorization_url"])
    forged = cookie.value[:-4] + ("AAAA" if not cookie.value.endswith("AAAA") else "BBBB")
    second.cookies.set(name, forged, domain="127.0.0.1", path=cookie["path"])

    refused = await second.get(back, headers=HTML)

    assert refused.status_code == 403
    assert WRONG_BROWSER in refused.text
    assert exchanges(sb, "simkl") == []
    assert await gw.connections() == []


async def test_declining_in_another_browser_does_not_end_the_flow(
    gw: ConnectGateway, sb: Sandbox, first: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    consent = await second.get(await gw.authorization_url(first, uuid.uuid4(), "trakt"))
    denied = await decide(second, consent, "deny")
    assert "error=access_denied" in denied.headers["Location"]

    page = await second.get(denied.headers["Location"], headers=HTML)

    assert page.status_code == 400
    assert "nothing was connected" in page.text
    [row] = await gw.sql("SELECT used_at FROM oauth_states")
    assert row["used_at"] is None  # a stranger cannot cancel someone's sign-in


async def test_two_flows_of_one_service_in_one_browser_both_finish(
    gw: ConnectGateway, sb: Sandbox, first: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    alice, bob = uuid.uuid4(), uuid.uuid4()
    back_alice = await callback_url(first, await gw.authorization_url(first, alice, "trakt"))
    back_bob = await callback_url(first, await gw.authorization_url(first, bob, "trakt"))

    assert (await first.get(back_bob, headers=HTML)).status_code == 200
    assert (await first.get(back_alice, headers=HTML)).status_code == 200

    assert len(await gw.connections(alice)) == len(await gw.connections(bob)) == 1


# --- Last.fm web auth ---------------------------------------------------------------------


async def test_lastfm_token_is_taken_only_with_our_state_and_the_cookie(
    gw: ConnectGateway, sb: Sandbox, first: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(first, await gw.authorization_url(first, user, "lastfm"))
    assert "token" in parse_qs(urlsplit(back).query)

    no_state = await first.get(without_query_parameter(back, "state"), headers=HTML)
    other_browser = await second.get(back, headers=HTML)

    assert no_state.status_code == 400
    assert other_browser.status_code == 403
    assert exchanges(sb, "lastfm") == []  # Last.fm was never asked for a session
    assert await gw.connections() == []

    done = await first.get(back, headers=HTML)

    assert done.status_code == 200, done.text
    assert len(exchanges(sb, "lastfm")) == 1
    [row] = await gw.connections(user)
    assert row["service"] == "lastfm"
