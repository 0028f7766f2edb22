"""The system as an operator runs it: ``scrobble up`` starts the sandbox and the four
services as separate processes, and these tests drive them only through Kafka (``scrobble
publish``) and HTTP (the gateway, the intake's printed webhook URLs), checking the outcome
at the fakes. ``scrobble down`` must leave no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from scrobble_cli.quickstart import DEMO_USER, alive
from scrobble_shared.trackers.registry import SERVICES
from tests.support import databases
from tests.support.infra import Infra
from tests.support.services import free_port
from tests.support.topics import Topics

pytestmark = pytest.mark.integration
SCROBBLE = str(Path(sys.executable).with_name("scrobble"))


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    state_dir: Path
    gateway: str
    sandbox: str
    database_url: str
    up_output: str
    up_seconds: float

    def bearer(self) -> dict[str, str]:
        token = (self.state_dir / "demo-user.jwt").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def pids(self) -> list[int]:
        return [int(p.read_text()) for p in self.state_dir.glob("*.pid")]


def scrobble(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [SCROBBLE, *args], env=env, input=stdin, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"scrobble {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    infra: Infra, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    name = databases.unique_name("qs")
    dsn = await databases.create_database(infra.database_url, name, template=migrated_template)
    topics = Topics(infra.kafka_bootstrap)
    for base in ("playback.events", *(f"scrobble.{s}" for s in SERVICES)):
        await topics.create(base)
    state_dir = tmp_path_factory.mktemp("quickstart")
    ports = {p: free_port() for p in ("gateway", "ingest", "dispatcher", "sandbox", "intake")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith(("_CLIENT_ID", "_API_KEY"))},
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "DATABASE_URL": dsn,
        "PLAYBACK_TOPIC": topics.name("playback.events"),
        "SCROBBLE_TOPIC_PREFIX": topics.name("scrobble."),
        "INGEST_GROUP_ID": topics.name("ingest"),
        "DISPATCHER_GROUP_ID": topics.name("dispatcher"),
    }
    env.pop("LISTENBRAINZ_TOKEN", None)
    started = time.monotonic()
    try:
        output = await asyncio.to_thread(
            scrobble,
            env,
            "up",
            "--state-dir", str(state_dir),
            "--gateway-port", str(ports["gateway"]),
            "--ingest-metrics-port", str(ports["ingest"]),
            "--dispatcher-metrics-port", str(ports["dispatcher"]),
            "--sandbox-port", str(ports["sandbox"]),
            "--intake-port", str(ports["intake"]),
        )  # fmt: skip
        yield Stack(
            env=env,
            state_dir=state_dir,
            gateway=f"http://127.0.0.1:{ports['gateway']}",
            sandbox=f"http://127.0.0.1:{ports['sandbox']}",
            database_url=dsn,
            up_output=output,
            up_seconds=time.monotonic() - started,
        )
    finally:
        await asyncio.to_thread(
            subprocess.run, [SCROBBLE, "down", "--state-dir", str(state_dir)], env=env, check=False
        )
        await topics.delete_created()
        await databases.drop_database(infra.database_url, name)


def fake_requests(stack: Stack, fake: str, path_prefix: str = "") -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{stack.sandbox}/_sandbox/{fake}/requests", params={"path_prefix": path_prefix}
    )
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()
    return found


def wait_for(what: str, check: Any, timeout_s: float = 60) -> Any:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def test_up_delivers_the_demo_to_every_fake(stack: Stack) -> None:
    out = stack.up_output
    assert "delivered in" in out, out
    for service in SERVICES:
        line = next(line for line in out.splitlines() if line.strip().startswith(service))
        assert " sent" in line, line
        assert "failed" not in line, line
        assert "dead" not in line, line
    # At the fakes, not only in our own bookkeeping.
    assert fake_requests(stack, "trakt", "/scrobble/stop")
    assert fake_requests(stack, "simkl", "/scrobble/stop")
    assert fake_requests(stack, "lastfm")
    librefm = fake_requests(stack, "librefm")
    assert [(c["body"]["method"], c["status"]) for c in librefm] == [("track.scrobble", 200)]
    assert fake_requests(stack, "listenbrainz", "/submit-listens")
    assert fake_requests(stack, "anilist")
    print(f"scrobble up reached 'delivered' in {stack.up_seconds:.1f} s")


def test_history_through_the_gateway_shows_the_demo(stack: Stack) -> None:
    answer = httpx.get(
        f"{stack.gateway}/api/v1/scrobble/history", headers=stack.bearer(), params={"limit": 100}
    )
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert {item["service"] for item in items} == set(SERVICES)
    recorded = [item for item in items if item["kind"] != "now_playing"]
    assert all(item["status"] == "sent" for item in recorded), recorded
    # The demo is published at once, so each play is over before its now playing is read:
    # skipped (best effort), with the reason in history.
    for item in items:
        if item["kind"] == "now_playing" and item["status"] != "sent":
            assert item["last_error"].startswith("now playing skipped"), item


def test_a_listen_published_to_kafka_reaches_listenbrainz(stack: Stack) -> None:
    before = len(fake_requests(stack, "listenbrainz", "/submit-listens"))
    track_id = str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(minutes=10)
    content = {
        "type": "track",
        "id": track_id,
        "title": "Xtal",
        "duration_ms": 290_000,
        "artists": ["Aphex Twin"],
    }
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "user_id": str(DEMO_USER),
            "action": action,
            "occurred_at": (start + timedelta(seconds=second)).isoformat(),
            "content": content,
            "position_ms": position,
            "session_id": "e2e",
        }
        for action, second, position in (("start", 0, 0), ("stop", 50, 280_000))
    ]
    scrobble(stack.env, "publish", "-", stdin="".join(json.dumps(e) + "\n" for e in events))

    def listened() -> list[dict[str, Any]]:
        calls = fake_requests(stack, "listenbrainz", "/submit-listens")
        return [c for c in calls[before:] if "Xtal" in json.dumps(c) and c["status"] == 200]

    wait_for("the listen at the ListenBrainz fake", listened)


def printed_webhook(stack: Stack, kind: str) -> str:
    """The webhook URL ``scrobble up`` printed for the demo user's source of this kind."""
    for line in stack.up_output.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == kind and "/api/v1/intake/" in words[1]:
            return words[1]
    raise AssertionError(f"no {kind} webhook URL in:\n{stack.up_output}")


def test_the_demo_went_through_the_intake(stack: Stack) -> None:
    assert "sent 8 playback events" in stack.up_output, stack.up_output
    metrics = httpx.get(printed_webhook(stack, "events").split("/api/")[0] + "/metrics").text
    assert 'scrobble_intake_events_total{action="stop",kind="events"} 4.0' in metrics


def test_a_jellyfin_webhook_to_the_printed_url_reaches_trakt(stack: Stack) -> None:
    url = printed_webhook(stack, "jellyfin")
    movie = {
        "ItemId": uuid.uuid4().hex,
        "ItemType": "Movie",
        "Name": "Inception",
        "Year": 2010,
        "RunTimeTicks": 88_800_000_000,
        "Provider_imdb": "tt1375666",
        "UserId": uuid.uuid4().hex,
        "NotificationUsername": "demo",
        "DeviceId": "e2e",
    }
    stamps = {"PlaybackStart": "21:00:00", "PlaybackStop": "22:30:00"}
    for notification, ticks in (("PlaybackStart", 0), ("PlaybackStop", 80_000_000_000)):
        webhook = {
            **movie,
            "NotificationType": notification,
            "PlaybackPositionTicks": ticks,
            "UtcTimestamp": f"2026-11-21T{stamps[notification]}.0000000Z",
        }
        answer = httpx.post(
            url, content=json.dumps(webhook), headers={"Content-Type": "text/plain"}
        )
        assert answer.status_code == 202, answer.text

    def stopped() -> list[dict[str, Any]]:
        calls = fake_requests(stack, "trakt", "/scrobble/stop")
        return [c for c in calls if "tt1375666" in json.dumps(c) and c["status"] == 201]

    wait_for("the movie's scrobble at the Trakt fake", stopped)


def test_the_readme_s_webhook_example_works_as_written(stack: Stack) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("Try one by hand", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    script = example.replace(
        ".local/quickstart/webhooks.txt", str(stack.state_dir / "webhooks.txt")
    )
    ran = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.replace(" ", "").count('"published":1') == 2, ran.stdout

    def stopped() -> list[dict[str, Any]]:
        calls = fake_requests(stack, "trakt", "/scrobble/stop")
        return [c for c in calls if "tt0133093" in json.dumps(c) and c["status"] == 201]

    wait_for("the README's film at the Trakt fake", stopped)


def test_queue_through_the_gateway_reaches_trakt(stack: Stack) -> None:
    connections = httpx.get(f"{stack.gateway}/api/v1/scrobble/connections", headers=stack.bearer())
    assert connections.status_code == 200, connections.text
    trakt = next(c for c in connections.json()["items"] if c["service"] == "trakt")
    request = {
        "connection_id": trakt["id"],
        "request": {
            "content_type": "movie",
            "content_id": str(uuid.uuid4()),
            "action": "mark_watched",
            "watched_at": "2026-11-20T21:00:00+00:00",
            "external_ids": {"imdb": "tt0137523"},
        },
    }
    answer = httpx.post(
        f"{stack.gateway}/api/v1/scrobble/queue", headers=stack.bearer(), json=request
    )
    assert answer.status_code in (201, 202), answer.text

    def arrived() -> list[dict[str, Any]]:
        calls = fake_requests(stack, "trakt", "/sync/history")
        return [c for c in calls if "tt0137523" in json.dumps(c) and c["status"] == 201]

    wait_for("the watched movie at the Trakt fake", arrived)


async def test_history_rows_are_in_postgres(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        dead = await conn.fetch(
            "SELECT service, kind, last_error FROM scrobbles WHERE status IN ('dead', 'failed') "
            "AND kind <> 'now_playing'"
        )
    finally:
        await conn.close()
    assert [dict(r) for r in dead] == []


def test_down_leaves_no_process_behind(stack: Stack) -> None:
    # Last in this module: the stack is gone after it.
    pids = stack.pids()
    assert len(pids) == 5, pids
    scrobble(stack.env, "down", "--state-dir", str(stack.state_dir))
    left = [pid for pid in pids if alive(pid)]
    assert not left, f"still running after scrobble down: {left}"
