"""Acceptance of the page for people (issue 16): a real headless Chromium, driven by
Playwright, against the system ``scrobble up`` starts on free ports, with the sandbox's real
consent pages standing in for the trackers.

The tests run in file order and build on each other, as a person would: one person signs
in with a link and connects all five trackers (clicking Approve on each fake's consent
page, typing Trakt's device code into its activation page, pasting a ListenBrainz token),
changes a threshold, adds a media server, plays a film and a track through the intake and
sees them delivered (1); a dead item is retried once (2); an import shows its progress and
ends with what the fake holds (3); a second person sees nothing of the first's, a form
without its token is refused and a link works once (4); axe-core finds no serious or
critical violation on any page (5). Screenshots of each page, 1280 and 360 px wide, go to
``.local/artifacts/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.support.infra import REPO, Infra
from tests.support.stack import Stack, running_stack, scrobble

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO / ".local" / "artifacts"
TOOLS = Path(os.environ.get("SCROBBLE_TOOLS_DIR") or REPO / ".local" / "tools")
AXE = TOOLS / "node" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {1280: 900, 360: 780}
PAGES = {
    "connections": "/connections",
    "activity": "/activity",
    "problems": "/problems",
    "import": "/import",
    "media-servers": "/media-servers",
}
STEP_MS = 30_000
API = "/api/v1/scrobble"
# The person's account name at every fake (the quick start's demo user is "sandbox").
ACCOUNT = "page-person"
LISTENBRAINZ_TOKEN = str(uuid.UUID("0b0e5e11-5a4d-4b0c-8000-00000000f00d"))
MOVIE_IMDB, MATRIX_IMDB = "tt1375666", "tt0133093"
HISTORY_SEEDED = 230

T = TypeVar("T")


@dataclass
class Person:
    user_id: uuid.UUID
    link: str
    context: BrowserContext
    page: Page
    console: list[str]


# --- fixtures -------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    infra: Infra, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(
        infra,
        migrated_template,
        tmp_path_factory.mktemp("page-stack"),
        topics=("scrobble.imports", "scrobble.trakt.dlq"),
    ) as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_context(browser: Browser, stack: Stack) -> tuple[BrowserContext, Page, list[str]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.gateway)
    page = await context.new_page()
    page.set_default_timeout(STEP_MS)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    return context, page, console


def login_link(stack: Stack, user: uuid.UUID) -> str:
    return scrobble(stack.env, "login-link", "--user", str(user)).strip()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def person(stack: Stack, browser: Browser) -> AsyncIterator[Person]:
    user = uuid.uuid4()
    link = await asyncio.to_thread(login_link, stack, user)
    context, page, console = await new_context(browser, stack)
    try:
        yield Person(user, link, context, page, console)
    finally:
        await context.close()


# --- helpers --------------------------------------------------------------------------------


def sandbox(stack: Stack, method: str, path: str, body: Any = None) -> Any:
    answer = httpx.request(method, f"{stack.sandbox}/_sandbox{path}", json=body, timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json()


def calls(stack: Stack, fake: str, path_prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sandbox(
        stack, "GET", f"/{fake}/requests?path_prefix={path_prefix}"
    )
    return found


async def eventually(
    what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float = 90
) -> T:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


async def flash(page: Page, expected: str) -> None:
    """Wait until the page's message region says ``expected`` (it may say something else
    first: the page reloads after each change)."""
    try:
        await page.locator("#flash p", has_text=expected).wait_for()
    except PlaywrightTimeout:
        said = await page.locator("#flash").inner_text()
        raise AssertionError(f"the page said {said!r}, not {expected!r}") from None


async def state_of(page: Page, service: str) -> str:
    return str(await page.locator(f"#card-{service} .state").get_attribute("data-state"))


async def screenshots(page: Page, name: str, path: str) -> list[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for width, height in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.goto(path)
        target = ARTIFACTS / f"page-{name}-{width}.png"
        target.unlink(missing_ok=True)
        await page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 0
        # Readable at this width: nothing wider than the window.
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, width, overflow)
        saved.append(target)
    await page.set_viewport_size({"width": 1280, "height": 900})
    return saved


async def approve(page: Page, title: str) -> None:
    """On a fake's consent page: sign in as the person's account there and Approve."""
    await page.locator("#approve").wait_for()
    assert await page.title() == f"{title} (sandbox)"
    await page.fill("input[name=sandbox_user]", ACCOUNT)
    await page.click("#approve")


def jellyfin(kind: str, item: dict[str, Any], at: datetime, ticks: int) -> dict[str, Any]:
    return {
        **item,
        "NotificationType": kind,
        "PlaybackPositionTicks": ticks,
        "UtcTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "UserId": "4c2a0d0e8b8c4f5d9a1b2c3d4e5f6a7b",
        "NotificationUsername": "person",
        "DeviceId": "page-e2e",
    }


def play(url: str, item: dict[str, Any], share: float, started: datetime) -> None:
    """A start and a stop at ``share`` of the item, as Jellyfin's webhook plugin sends them."""
    length = int(item["RunTimeTicks"])
    for kind, at, ticks in (
        ("PlaybackStart", started, 0),
        ("PlaybackStop", started + timedelta(seconds=40), int(length * share)),
    ):
        answer = httpx.post(
            url,
            content=json.dumps(jellyfin(kind, item, at, ticks)),
            headers={"Content-Type": "text/plain"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text


def play_start(url: str, item: dict[str, Any]) -> None:
    """Only the start of a play: it is playing now."""
    started = datetime.now(UTC) - timedelta(seconds=5)
    answer = httpx.post(
        url,
        content=json.dumps(jellyfin("PlaybackStart", item, started, 0)),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


INCEPTION = {
    "ItemId": uuid.uuid4().hex,
    "ItemType": "Movie",
    "Name": "Inception",
    "Year": 2010,
    "RunTimeTicks": 88_800_000_000,
    "Provider_imdb": MOVIE_IMDB,
}
WINDOWLICKER = {
    "ItemId": uuid.uuid4().hex,
    "ItemType": "Audio",
    "Name": "Windowlicker",
    "Year": 1999,
    "RunTimeTicks": 3_670_000_000,
    "Artist": "Aphex Twin",
    "Album": "Windowlicker",
}
XTAL = {
    "ItemId": uuid.uuid4().hex,
    "ItemType": "Audio",
    "Name": "Xtal",
    "RunTimeTicks": 2_900_000_000,
    "Artist": "Aphex Twin",
}
MATRIX = {
    "ItemId": uuid.uuid4().hex,
    "ItemType": "Movie",
    "Name": "The Matrix",
    "Year": 1999,
    "RunTimeTicks": 81_600_000_000,
    "Provider_imdb": MATRIX_IMDB,
}


async def row_status(page: Page, text: str, tracker: str) -> str | None:
    rows = page.locator("table.history tbody tr", has_text=text).filter(has_text=tracker)
    if await rows.count() == 0:
        return None
    return (await rows.first.locator('td[data-label="Status"]').inner_text()).strip()


# --- 1: sign in, connect all five, a threshold, plays through the intake --------------------


async def test_a_new_user_connects_everything_and_sees_plays_delivered(
    stack: Stack, person: Person
) -> None:
    page = person.page
    await page.goto(person.link)
    assert await page.title() == "Sign in · revenge-scrobble"
    await page.click("#sign-in")
    await page.wait_for_url(f"{stack.gateway}/connections")
    assert await page.locator("h1").inner_text() == "Connections"
    [session] = [
        c for c in await person.context.cookies(stack.gateway) if c["name"] == "scrobble_session"
    ]
    assert (session["httpOnly"], session["sameSite"]) == (True, "Lax")
    for service in ("trakt", "simkl", "anilist", "lastfm", "listenbrainz"):
        assert await state_of(page, service) == "not_connected"

    # Browser flows: the page's script starts the flow, the fake's page asks, Approve.
    for service, title in (("simkl", "Simkl"), ("anilist", "AniList"), ("lastfm", "Last.fm")):
        await page.click(f"#connect-{service}")
        await approve(page, title)
        await page.wait_for_url(f"{stack.gateway}/connections?connected={service}")
        await flash(page, f"{title} is connected.")
        assert await state_of(page, service) == "active"

    # Trakt by device code, typed into the fake's activation page in another tab.
    await page.click("#connect-trakt-code")
    await page.locator("#device-trakt").wait_for(state="visible")
    code = (await page.locator("#device-trakt .code").inner_text()).strip()
    verification = await page.locator("#device-trakt a.verification").get_attribute("href")
    assert code
    assert verification
    activation = await person.context.new_page()
    await activation.goto(verification)
    await activation.fill("input[name=user_code]", code.lower())
    await approve(activation, "Trakt")
    await activation.close()
    await flash(page, f"Trakt is connected as {ACCOUNT}.")
    assert await state_of(page, "trakt") == "active"

    # ListenBrainz by token: a wrong one is refused in a sentence, the right one connects.
    sandbox(
        stack,
        "POST",
        "/listenbrainz/seed",
        {"kind": "users", "items": [{"name": ACCOUNT, "token": LISTENBRAINZ_TOKEN}]},
    )
    await page.fill("#listenbrainz-token", str(uuid.uuid4()))
    await page.click("#connect-listenbrainz")
    error = page.locator("#card-listenbrainz .form-error")
    await error.filter(has_text="ListenBrainz does not accept this token").wait_for()
    await page.fill("#listenbrainz-token", LISTENBRAINZ_TOKEN)
    await page.click("#connect-listenbrainz")
    await flash(page, "ListenBrainz is connected.")
    for service in ("trakt", "simkl", "anilist", "lastfm", "listenbrainz"):
        assert await state_of(page, service) == "active", service

    # A threshold: Trakt counts a film as watched from 70 % on.
    await page.fill("#threshold-trakt", "70")
    await page.click("#save-trakt")
    await flash(page, "Trakt settings saved.")
    assert await page.input_value("#threshold-trakt") == "70"

    # A media server: its URL, shown once, with a copy button.
    await page.goto(f"{stack.gateway}/media-servers")
    await page.select_option("#new-kind", "jellyfin")
    await page.fill("#new-name", "Den upstairs")
    await page.click("#add-source")
    # The script fills the box, then shows it (a string to wait_for_function would be
    # an eval, which the page's Content-Security-Policy refuses).
    url_box = page.locator("#new-url")
    await url_box.wait_for(state="visible")
    webhook = await url_box.input_value()
    assert "/api/v1/intake/jellyfin/" in webhook
    assert await page.locator('[data-kind-steps="jellyfin"]').is_visible()
    await page.click('button[data-copy="new-url"]')
    await page.locator(".secret-panel .copy-status", has_text="Copied.").first.wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == webhook

    # A film watched to 75 % and a track played through, sent by "Jellyfin".
    started = datetime.now(UTC) - timedelta(minutes=20)
    await asyncio.to_thread(play, webhook, INCEPTION, 0.75, started)
    await asyncio.to_thread(play, webhook, WINDOWLICKER, 0.95, started + timedelta(minutes=5))

    await page.goto(f"{stack.gateway}/activity")
    # Now playing refreshes itself: a track started now shows up without a reload.
    await page.evaluate("() => { window.stillTheSamePage = true; }")
    await asyncio.to_thread(play_start, webhook, XTAL)
    await page.locator("#now-playing", has_text="Aphex Twin - Xtal").wait_for()
    assert await page.evaluate("() => window.stillTheSamePage") is True

    async def delivered() -> bool:
        await page.reload()
        expected = [
            ("Inception (2010)", "Trakt"),
            ("Aphex Twin - Windowlicker", "Last.fm"),
            ("Aphex Twin - Windowlicker", "ListenBrainz"),
        ]
        statuses = [await row_status(page, item, tracker) for item, tracker in expected]
        return all(s is not None and s.startswith("Delivered") for s in statuses)

    await eventually("the film and the track delivered on the Activity page", delivered)
    # Watched at 75 % under Trakt's 70: in history as watched (the 80 % default would not).
    trakt_row = page.locator("table.history tbody tr", has_text="Inception (2010)").filter(
        has_text="Trakt"
    )
    assert "Marked watched" in await trakt_row.first.inner_text()
    history = [c for c in calls(stack, "trakt", "/sync/history") if MOVIE_IMDB in json.dumps(c)]
    assert [c["status"] for c in history] == [201]
    assert [
        c
        for c in calls(stack, "listenbrainz", "/submit-listens")
        if "Windowlicker" in json.dumps(c) and c["status"] == 200
    ]

    for name, path in PAGES.items():
        await screenshots(page, name, f"{stack.gateway}{path}")
    # Nothing the Content-Security-Policy had to block, and no script error.
    blocked = [m for m in person.console if "Content Security Policy" in m or "pageerror" in m]
    assert blocked == [], blocked


# --- 2: a dead item, retried once ------------------------------------------------------------


async def test_a_dead_item_is_shown_with_its_reason_and_retry_delivers_it_once(
    stack: Stack, person: Person
) -> None:
    page = person.page
    sandbox(
        stack,
        "POST",
        "/trakt/faults",
        {"kind": "error", "status": 422, "count": 1, "path_prefix": "/scrobble/stop"},
    )
    webhook = await _webhook(page, stack)
    await asyncio.to_thread(play, webhook, MATRIX, 0.92, datetime.now(UTC) - timedelta(minutes=10))

    async def dead_row() -> bool:
        await page.goto(f"{stack.gateway}/problems")
        return (
            await page.locator("table.problems tbody tr", has_text="The Matrix (1999)").count() == 1
        )

    await eventually("the dead film on the Problems page", dead_row)
    row = page.locator("table.problems tbody tr", has_text="The Matrix (1999)")
    reason = (await row.locator("td.reason").inner_text()).strip()
    assert "422" in reason, reason
    assert "another user's" not in await row.inner_text()
    await screenshots(page, "problems-dead", f"{stack.gateway}/problems")

    def stops() -> list[dict[str, Any]]:
        return [c for c in calls(stack, "trakt", "/scrobble/stop") if MATRIX_IMDB in json.dumps(c)]

    assert [c["status"] for c in stops()] == [422]

    row = page.locator("table.problems tbody tr", has_text="The Matrix (1999)")
    await row.get_by_role("button", name="Retry The Matrix (1999) for Trakt").click()
    await flash(page, "Queued again: The Matrix (1999) for Trakt.")

    async def sent_once() -> list[int] | None:
        statuses = [c["status"] for c in stops()]
        return statuses if 201 in statuses else None

    assert await eventually("the retried film at the Trakt fake", sent_once) == [422, 201]
    await page.goto(f"{stack.gateway}/activity?service=trakt&status=sent")
    assert await row_status(page, "The Matrix (1999)", "Trakt") == "Delivered"
    await page.goto(f"{stack.gateway}/problems")
    assert "Nothing gave up" in await page.inner_text("main")
    assert [c["status"] for c in stops()] == [422, 201]


async def _webhook(page: Page, stack: Stack) -> str:
    """A new URL for the person's media server (the first was shown only once)."""
    await page.goto(f"{stack.gateway}/media-servers")
    card = page.locator("li.card", has_text="Den upstairs")
    await card.get_by_role("button", name="New URL").click()
    box = card.locator("input.webhook-url")
    await box.wait_for(state="visible")
    return await box.input_value()


# --- 3: an import with its progress ---------------------------------------------------------


async def test_an_import_shows_progress_and_ends_with_what_the_fake_holds(
    stack: Stack, person: Person
) -> None:
    page = person.page
    base = datetime.now(UTC) - timedelta(days=400)
    items = [
        {
            "type": "movie",
            "watched_at": (base + timedelta(hours=n)).isoformat(),
            "movie": {
                "title": f"Imported film {n}",
                "year": 1990 + n % 30,
                "ids": {"trakt": 900_000 + n},
            },
        }
        for n in range(HISTORY_SEEDED)
    ]
    sandbox(stack, "POST", "/trakt/seed", {"kind": "history", "items": items, "user": ACCOUNT})
    # Each page of history a little slow, so the progress has time to be seen moving.
    sandbox(
        stack,
        "POST",
        "/trakt/faults",
        {"kind": "slow", "delay_ms": 1500, "count": 20, "path_prefix": "/sync/history"},
    )
    state = sandbox(stack, "GET", "/trakt/state")
    held = len([h for h in state["history"] if h["user"] == ACCOUNT])
    held += len([r for r in state["ratings"] if r["user"] == ACCOUNT])
    assert held >= HISTORY_SEEDED + 2  # the seeds and the two films delivered above

    await page.goto(f"{stack.gateway}/import")
    await page.click("#import-trakt")
    await flash(page, "Import from Trakt started.")
    counts = page.locator("#job-trakt .counts")
    seen: list[int] = []

    async def finished() -> bool:
        text = await counts.get_attribute("data-seen")
        if text is not None and (not seen or int(text) != seen[-1]):
            seen.append(int(text))
        return await page.locator("#job-trakt").get_attribute("data-state") == "done"

    await page.evaluate("() => { window.stillTheSamePage = true; }")
    await eventually("the import done on the page, without reloading", finished, timeout_s=180)
    assert await page.evaluate("() => window.stillTheSamePage") is True
    print(f"import progress seen on the page (items seen): {seen}")
    added = int(str(await counts.get_attribute("data-added")))
    assert seen[-1] == held
    assert added == held
    assert len([s for s in seen if 0 < s < held]) >= 1, f"no progress seen between: {seen}"
    assert await page.locator("#progress-trakt").get_attribute("value") == "1"
    await screenshots(page, "import-done", f"{stack.gateway}/import")
    await page.goto(f"{stack.gateway}/import")
    assert "Imported film" in await page.locator("table.added").inner_text()


# --- 4: a second person, CSRF, a link once --------------------------------------------------


async def test_a_second_user_sees_nothing_of_the_first(
    stack: Stack, browser: Browser, person: Person
) -> None:
    other_user = uuid.uuid4()
    link = await asyncio.to_thread(login_link, stack, other_user)
    context, page, _ = await new_context(browser, stack)
    try:
        await page.goto(link)
        await page.click("#sign-in")
        await page.wait_for_url(f"{stack.gateway}/connections")
        mine = await _ids_of(stack, person)
        for path in (*PAGES.values(), "/activity/now-playing", "/import/progress"):
            answer = await page.goto(f"{stack.gateway}{path}")
            assert answer is not None
            assert answer.status == 200, path
            html = await page.content()
            for secret in (
                "Inception",
                "Windowlicker",
                "Xtal",
                "The Matrix",
                "Imported film",
                "Den upstairs",
                ACCOUNT,
                *mine.values(),
            ):
                assert secret not in html, (path, secret)
        await page.goto(f"{stack.gateway}/connections")
        for service in ("trakt", "simkl", "anilist", "lastfm", "listenbrainz"):
            assert await state_of(page, service) == "not_connected"
        # Guessing the first person's ids, with the second's own session and CSRF token.
        csrf = await page.get_attribute('meta[name="csrf-token"]', "content")
        guesses = [
            ("PUT", f"{API}/connections/{mine['trakt']}", {"enabled": False}, 404),
            ("DELETE", f"{API}/connections/{mine['lastfm']}", None, 404),
            ("GET", f"{API}/sources/{mine['source']}", None, 404),
            ("POST", f"{API}/sources/{mine['source']}/rotate", None, 404),
            ("GET", f"{API}/import/jobs/{mine['job']}", None, 404),
            ("POST", f"{API}/dead-letters/replay", {"id": mine["scrobble"]}, 404),
            ("POST", f"{API}/admin/dead-letters/replay", {"id": mine["scrobble"]}, 403),
            ("GET", f"{API}/history?connection_id={mine['trakt']}", None, 404),
        ]
        for method, path, body, status in guesses:
            fetched = await _fetch(page, method, path, csrf, body)
            assert fetched["status"] == status, (method, path, fetched)
        # CSRF: the same call without the token is refused, and so is the sign-out form.
        refused = await _fetch(page, "GET", f"{API}/connections", None, None)
        assert refused["status"] == 403
        await page.evaluate(
            "document.querySelector('form[action=\"/sign-out\"] input[name=csrf_token]').remove()"
        )
        await page.click("text=Sign out")
        assert await page.locator("h1").inner_text() == "Form not accepted"
        still = await page.goto(f"{stack.gateway}/connections")
        assert still is not None
        assert still.status == 200  # still signed in
        # The first person's link was used: it signs nobody in again.
        await page.goto(person.link)
        assert await page.locator("h1").inner_text() == "Sign-in link already used"
        assert await page.locator("#sign-in").count() == 0
        # Signing out ends the session: its pages send the browser to sign in.
        await page.goto(f"{stack.gateway}/connections")
        await page.click("text=Sign out")
        await page.wait_for_url(f"{stack.gateway}/sign-in?signed_out=1")
        await page.goto(f"{stack.gateway}/activity")
        assert page.url == f"{stack.gateway}/sign-in"
    finally:
        await context.close()
    # The first person's things are as they were.
    assert (await _ids_of(stack, person))["trakt"] == mine["trakt"]


async def _ids_of(stack: Stack, person: Person) -> dict[str, str]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        found = {
            r["service"]: str(r["id"])
            for r in await conn.fetch(
                "SELECT id, service FROM connections WHERE user_id = $1", person.user_id
            )
        }
        found["source"] = str(
            await conn.fetchval("SELECT id FROM sources WHERE owner_id = $1", person.user_id)
        )
        found["job"] = str(
            await conn.fetchval("SELECT id FROM import_jobs WHERE user_id = $1", person.user_id)
        )
        found["scrobble"] = str(
            await conn.fetchval(
                "SELECT id FROM scrobbles WHERE user_id = $1 LIMIT 1", person.user_id
            )
        )
    finally:
        await conn.close()
    return found


_FETCH = """async ([method, url, csrf, body]) => {
    const headers = {"Accept": "application/json"};
    if (csrf !== null) headers["X-CSRF-Token"] = csrf;
    if (body !== null) headers["Content-Type"] = "application/json";
    const answer = await fetch(url, {method, headers, credentials: "same-origin",
                                     body: body === null ? undefined : JSON.stringify(body)});
    return {status: answer.status, body: await answer.text()};
}"""


async def _fetch(page: Page, method: str, path: str, csrf: str | None, body: Any) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate(_FETCH, [method, path, csrf, body])
    return found


# --- 5: accessibility -----------------------------------------------------------------------

_AXE_RUN = """async () => {
    const found = await axe.run(document, {resultTypes: ["violations"]});
    return found.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}));
}"""


async def test_axe_finds_no_serious_or_critical_violation_on_any_page(
    stack: Stack, browser: Browser, person: Person
) -> None:
    assert AXE.exists(), f"axe-core not installed: run `bash deploy/tools/install-axe.sh` ({AXE})"
    # A context of its own that lets axe's script in; the pages themselves are the same.
    context = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    session: list[Any] = [
        {"name": c["name"], "value": c["value"], "url": stack.gateway}
        for c in await person.context.cookies(stack.gateway)
        if c["name"] == "scrobble_session"
    ]
    await context.add_cookies(session)
    page = await context.new_page()
    page.set_default_timeout(STEP_MS)
    report: dict[str, list[str]] = {}
    try:
        targets = {**PAGES, "sign-in": "/sign-in", "signed-out": "/sign-in?signed_out=1"}
        for width, height in WIDTHS.items():
            await page.set_viewport_size({"width": width, "height": height})
            for name, path in targets.items():
                await page.goto(f"{stack.gateway}{path}")
                await page.add_script_tag(path=str(AXE))
                result = await page.evaluate(_AXE_RUN)
                report[f"{name} @{width}"] = [
                    f"{v['id']} ({v['impact']}, {v['nodes']})" for v in result
                ]
                bad = [v for v in result if v["impact"] in ("serious", "critical")]
                assert bad == [], (name, width, bad)
    finally:
        await context.close()
    for where, found in report.items():
        print(f"axe {where}: {', '.join(found) or 'no violations'}")
