"""Fixtures for the sandbox tests: one sandbox server per session, reset before each test
(``sb``, from tests/support/sandbox.py), and an httpx client that submits forms as a
browser does.
"""

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
import pytest
import pytest_asyncio

from scrobble_sandbox.credentials import SANDBOX_TOKEN
from tests.support.sandbox import sandbox_server, sb

__all__ = ["sandbox_server", "sb"]  # the fixtures


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    """Built once: httpx would load the CA bundle for every client (~25 ms a test)."""
    return ssl.create_default_context()


@pytest_asyncio.fixture(loop_scope="session")
async def client(tls: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False, verify=tls) as c:
        yield c


@pytest.fixture
def token() -> str:
    return SANDBOX_TOKEN


@dataclass
class Form:
    """A form as a browser sees it: where it posts, its inputs and its submit buttons."""

    action: str = ""
    method: str = "get"
    # name -> (type, value, required)
    inputs: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    buttons: dict[str, tuple[str, str]] = field(default_factory=dict)  # id or value -> (n, v)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            kind = a.get("type", "text").lower()
            self.forms[-1].inputs[a["name"]] = (kind, a.get("value", ""), "required" in a)
        elif tag == "button" and self.forms and a.get("type", "submit") == "submit":
            key = a.get("id") or a.get("value", "")
            self.forms[-1].buttons[key] = (a.get("name", ""), a.get("value", ""))


class Browser:
    """Submits the single form of an HTML page the way a browser would: a person can only
    type into visible inputs; hidden ones go as they are; the clicked button adds its
    name=value; required inputs must not be empty."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def form(page: httpx.Response) -> Form:
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        parser = _FormParser()
        parser.feed(page.text)
        [form] = parser.forms
        return form

    async def submit(
        self, page: httpx.Response, typed: dict[str, str], button: str
    ) -> httpx.Response:
        form = self.form(page)
        fields = {name: value for name, (_, value, _) in form.inputs.items()}
        for name, text in typed.items():
            assert name in form.inputs, f"no input named {name!r} on the page"
            kind = form.inputs[name][0]
            assert kind in ("text", "search", "email", "password"), f"{name!r} is {kind}"
            fields[name] = text
        for name, (_, _, required) in form.inputs.items():
            assert not (required and not fields[name].strip()), f"{name!r} is required"
        name, value = form.buttons[button]
        if name:
            fields[name] = value
        assert form.method == "post"
        return await self.client.post(urljoin(str(page.url), form.action), data=fields)


@pytest.fixture
def browser(client: httpx.AsyncClient) -> Browser:
    return Browser(client)
