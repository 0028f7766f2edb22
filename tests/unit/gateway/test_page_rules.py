"""The page's pure parts: session cookie and CSRF token, session states, how items and
statuses are named, and which routes answer without a bearer token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from scrobble_gateway.connect.return_urls import allowlist_with_page, is_allowed
from scrobble_gateway.page import describe, sessions
from scrobble_gateway.page.render import load_static, page_view, setup_templates
from scrobble_gateway.page.sessions import SessionTimes, session_state

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IDLE = timedelta(hours=1)


def test_the_csrf_token_belongs_to_one_session_and_reveals_nothing_of_it() -> None:
    one, two = sessions.new_value(), sessions.new_value()
    assert one != two
    assert len(one) >= 43
    token = sessions.csrf_token(one)
    assert token == sessions.csrf_token(one)
    assert token != sessions.csrf_token(two)
    assert one not in token
    assert sessions.csrf_matches(one, token)
    assert not sessions.csrf_matches(two, token)
    for wrong in (None, "", token[:-1], token + "x", "é" * 43):
        assert not sessions.csrf_matches(one, wrong)


def test_only_the_digest_of_a_cookie_is_kept() -> None:
    value = sessions.new_value()
    digest = sessions.value_digest(value)
    assert len(digest) == 32
    assert value.encode() not in digest


@pytest.mark.parametrize(
    ("times", "now", "state"),
    [
        (SessionTimes(T0, T0, T0 + timedelta(hours=12), None), T0 + timedelta(minutes=59), "live"),
        (SessionTimes(T0, T0, T0 + timedelta(hours=12), None), T0 + timedelta(hours=1), "idle"),
        (
            SessionTimes(T0, T0 + timedelta(hours=11, minutes=30), T0 + timedelta(hours=12), None),
            T0 + timedelta(hours=12),
            "expired",
        ),
        (SessionTimes(T0, T0, T0 + timedelta(hours=12), T0), T0, "ended"),
    ],
)
def test_session_states(times: SessionTimes, now: datetime, state: str) -> None:
    assert session_state(times, now, IDLE) == state


def _cookie(public_url: str) -> SimpleCookie:
    response = web.Response()
    sessions.set_cookie(response, "v" * 43, public_url=public_url, max_age=timedelta(hours=12))
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.cookies.output(header="").strip())
    return jar


def test_the_cookie_under_https_is_secure_and_host_only() -> None:
    jar = _cookie("https://scrobble.example")
    [(name, morsel)] = jar.items()
    assert name == "__Host-scrobble_session"
    assert morsel["secure"]
    assert morsel["httponly"]
    assert morsel["path"] == "/"
    assert not morsel["domain"]
    assert morsel["samesite"] == "Lax"
    assert morsel["max-age"] == str(12 * 3600)


def test_the_cookie_under_http_has_no_secure_flag() -> None:
    [(name, morsel)] = _cookie("http://127.0.0.1:8080").items()
    assert name == "scrobble_session"
    assert not morsel["secure"]
    assert morsel["httponly"]
    assert morsel["samesite"] == "Lax"


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ({"type": "movie", "title": "Heat", "year": 1995}, "Heat (1995)"),
        ({"type": "movie", "title": "Heat"}, "Heat"),
        (
            {
                "type": "episode",
                "title": "Good News About Hell",
                "season": 1,
                "number": 1,
                "show": {"title": "Severance"},
            },
            "Severance S01E01 Good News About Hell",
        ),
        (
            {"type": "anime_episode", "number": 3, "show": {"title": "Frieren"}},
            "Frieren episode 3",
        ),
        (
            {"type": "track", "title": "Windowlicker", "artists": ["Aphex Twin"]},
            "Aphex Twin - Windowlicker",
        ),
        ({"type": "track", "artists": "not a list"}, "Unknown track"),
        ({"type": "movie", "title": "  ", "year": True}, "Unknown item"),
    ],
)
def test_items_are_named_as_people_name_them(content: dict[str, object], text: str) -> None:
    assert describe.content_text(content) == text
    assert describe.item_text({"content": content}) == text


def test_items_of_unexpected_shape_are_unknown_not_an_error() -> None:
    shapes: list[object] = [None, [], {"content": None}, {"content": "Heat"}]
    for request in shapes:
        assert describe.item_text(request) == "Unknown item"


def test_a_switched_off_connection_is_disabled_whatever_its_token() -> None:
    assert describe.connection_state({"enabled": False, "status": "active"}) == "disabled"
    assert describe.connection_state({"enabled": True, "status": "needs_reconnect"}) == (
        "needs_reconnect"
    )
    assert describe.when(None) == "never"
    assert describe.when(T0) == "2026-12-01 12:00 UTC"


def test_static_files_are_versioned_by_their_content() -> None:
    files = load_static()
    assert {"page.js", "page.css"} <= set(files.by_name)
    url = files.url("page.js")
    assert url.startswith("/static/page.js?v=")
    assert files.by_name["page.js"].charset == "utf-8"


def test_the_page_s_own_connections_page_is_always_a_return_url() -> None:
    public = "https://scrobble.example"
    allowed = allowlist_with_page("", public)
    assert is_allowed(f"{public}/connections?connected=trakt", allowed)
    assert is_allowed(f"{public}/connections", allowed)
    assert not is_allowed(f"{public}/api/v1/scrobble/connections", allowed)
    assert not is_allowed(f"{public}/connections/../sign-out", allowed)
    assert not is_allowed("https://evil.example/connections", allowed)
    operator = allowlist_with_page("https://app.example/settings/", public)
    assert is_allowed("https://app.example/settings/trakt", operator)
    assert is_allowed(f"{public}/connections", operator)


async def _page_answer(error: Exception) -> tuple[int, str, str]:
    @page_view
    async def failing(_: web.Request) -> web.Response:
        raise error

    app = web.Application()
    setup_templates(app)
    app.router.add_get("/failing", failing)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/failing")
        return answer.status, answer.headers["Content-Security-Policy"], await answer.text()


async def test_a_page_whose_database_is_away_says_so_in_a_sentence() -> None:
    status, csp, html = await _page_answer(ConnectionRefusedError("db at 10.0.0.5 refused"))
    assert status == 503
    assert "script-src 'self'" in csp
    assert "cannot reach its database" in html
    assert "10.0.0.5" not in html
    assert "Traceback" not in html


async def test_an_unexpected_error_on_a_page_is_a_sentence_not_a_stack_trace() -> None:
    status, _, html = await _page_answer(KeyError("secret-token-value"))
    assert status == 500
    assert "Something went wrong on our side" in html
    assert "secret-token-value" not in html
    assert "KeyError" not in html
