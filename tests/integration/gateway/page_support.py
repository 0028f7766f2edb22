"""What the page's httpx-level tests share; holds no tests itself.

A "browser" here is an aiohttp client session of its own (its own cookie jar) against the
test gateway; signing in goes the way a person's browser does it: open the link, read the
form, post it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.integration.gateway.conftest import Gateway

API = "/api/v1/scrobble"
LOGIN_LINKS = f"{API}/admin/login-links"
ADMIN = uuid.UUID("a0000000-0000-4000-8000-00000000ad01")


class FormFields(HTMLParser):
    """The hidden and visible inputs of every form on a page, by the form's action."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag == "input" and a.get("name") and self.forms:
            self.forms[-1][1][a["name"]] = a.get("value", "")
        elif tag == "meta" and a.get("name"):
            self.meta[a["name"]] = a.get("content", "")


def parse(html: str) -> FormFields:
    found = FormFields()
    found.feed(html)
    return found


def form(html: str, action: str) -> dict[str, str]:
    for form_action, fields in parse(html).forms:
        if form_action == action:
            return fields
    raise AssertionError(f"no form posting to {action}")


def csrf_of(html: str) -> str:
    token = parse(html).meta.get("csrf-token")
    assert token, "the page has no CSRF token"
    return token


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def make_link(gateway: Gateway, user: uuid.UUID, *, admin: bool = False) -> str:
    """A sign-in link for ``user`` made through the admin route; its path and query."""
    answer = await gateway.client.post(
        LOGIN_LINKS,
        json={"user_id": str(user), "admin": admin},
        headers=gateway.auth(ADMIN, "admin"),
    )
    assert answer.status == 201, await answer.text()
    return path_of((await answer.json())["url"])


class Browser:
    """One browser: its own cookies, following nothing on its own."""

    def __init__(self, gateway: Gateway, session: aiohttp.ClientSession) -> None:
        self.gateway = gateway
        self.http = session

    def url(self, path: str) -> str:
        return str(self.gateway.client.make_url(path))

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.http.get(self.url(path), allow_redirects=False, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.http.post(self.url(path), allow_redirects=False, **kwargs)

    async def request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.http.request(method, self.url(path), allow_redirects=False, **kwargs)

    async def sign_in(self, link: str) -> aiohttp.ClientResponse:
        """Open the link and press Sign in; the answer to the form."""
        page = await self.get(link)
        assert page.status == 200, await page.text()
        fields = form(await page.text(), "/sign-in")
        return await self.post("/sign-in", data=fields)

    async def csrf(self, path: str = "/connections") -> str:
        page = await self.get(path)
        assert page.status == 200, await page.text()
        return csrf_of(await page.text())

    def cookie(self, name: str) -> str | None:
        for morsel in self.http.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None

    async def api(
        self, method: str, path: str, csrf: str | None, json: Any = None
    ) -> aiohttp.ClientResponse:
        headers = {} if csrf is None else {"X-CSRF-Token": csrf}
        return await self.request(method, path, json=json, headers=headers)


@asynccontextmanager
async def browser(gateway: Gateway) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Browser(gateway, session)


async def signed_in(gateway: Gateway, user: uuid.UUID, *, admin: bool = False) -> Browser:
    """Not a context manager: the caller closes ``.http``."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    found = Browser(gateway, session)
    answer = await found.sign_in(await make_link(gateway, user, admin=admin))
    assert answer.status == 303, await answer.text()
    return found


def set_cookie_headers(answer: aiohttp.ClientResponse) -> list[str]:
    return answer.headers.getall("Set-Cookie", [])


def text_of(html: str) -> str:
    """The page's text without tags, spaces squeezed (for "does it say X" checks)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
