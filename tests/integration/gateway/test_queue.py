"""``POST /queue``: a hand-queued scrobble takes the ingest path (work rules, idempotent
row, outbox, the work topic keyed by connection id) and lands exactly once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.gateway.conftest import Gateway
from tests.support.kafka import collect

ALICE = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
BOB = uuid.UUID("0c8f2a55-1d3e-4b7a-9e21-5a6b7c8d9e10")
QUEUE = "/api/v1/scrobble/queue"
MOVIE = "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d01"
TRACK = "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d04"


def watched_movie(**overrides: Any) -> dict[str, Any]:
    return {
        "content_type": "movie",
        "content_id": MOVIE,
        "action": "stop",
        "watched_at": "2026-11-20T21:00:00Z",
        "progress_percent": 95,
        "external_ids": {"imdb": "tt0113277", "tmdb": 949},
        "content": {"title": "Heat", "year": 1995},
        **overrides,
    }


async def test_the_same_request_twice_lands_once(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt", access_token="t")
    body = {"connection_id": str(connection), "request": watched_movie()}

    first = await gateway.client.post(QUEUE, json=body, headers=gateway.auth(ALICE))
    assert first.status == 202, await first.text()
    queued = (await first.json())["items"]
    assert len(queued) == 1
    assert queued[0]["kind"] == "scrobble"
    assert queued[0]["status"] == "queued"
    assert queued[0]["connection_id"] == str(connection)
    assert queued[0]["occurred_at"].startswith("2026-11-20T21:00:00")

    # The same request again, keys in another order: the same scrobble, not a new one.
    again = {"request": dict(reversed(watched_movie().items())), "connection_id": str(connection)}
    second = await gateway.client.post(QUEUE, json=again, headers=gateway.auth(ALICE))
    assert second.status == 200, await second.text()
    assert (await second.json())["items"] == queued

    rows = await gateway.sql("SELECT id, kind, request FROM scrobbles")
    assert len(rows) == 1
    assert str(rows[0]["id"]) == queued[0]["id"]
    topic = gateway.service_topics["trakt"]
    messages = await collect(gateway.settings.kafka_bootstrap_servers, [topic], expected=1)
    assert len(messages) == 1
    message = messages[0]
    assert message.key == str(connection).encode()
    assert message.headers["kind"] == "scrobble"
    assert message.headers["message-id"] == queued[0]["id"]
    work = message.json()
    assert work["scrobble_id"] == queued[0]["id"]
    assert work["user_id"] == str(ALICE)
    assert work["service"] == "trakt"
    assert work["content"]["external_ids"] == {"imdb": "tt0113277", "tmdb": 949}
    assert work["content"]["title"] == "Heat"
    assert await gateway.sql("SELECT id FROM outbox") == []


async def test_another_play_of_the_same_item_is_another_scrobble(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt")
    for watched_at in ("2026-11-20T21:00:00Z", "2026-11-21T21:00:00Z"):
        body = {"connection_id": str(connection), "request": watched_movie(watched_at=watched_at)}
        answer = await gateway.client.post(QUEUE, json=body, headers=gateway.auth(ALICE))
        assert answer.status == 202
    assert len(await gateway.sql("SELECT id FROM scrobbles")) == 2


async def test_a_listen_follows_the_listen_rule(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "lastfm", access_token="session")
    track = {
        "content_type": "track",
        "content_id": TRACK,
        "action": "stop",
        "watched_at": "2026-11-20T21:04:05Z",
        "content": {"title": "Windowlicker", "artists": ["Aphex Twin"], "duration_ms": 367_000},
    }
    short = {"connection_id": str(connection), "request": {**track, "progress_percent": 20}}
    answer = await gateway.client.post(QUEUE, json=short, headers=gateway.auth(ALICE))
    assert answer.status == 422
    assert [e["field"] for e in (await answer.json())["errors"]] == ["request.action"]

    counted = {"connection_id": str(connection), "request": {**track, "progress_percent": 100}}
    answer = await gateway.client.post(QUEUE, json=counted, headers=gateway.auth(ALICE))
    assert answer.status == 202, await answer.text()
    item = (await answer.json())["items"][0]
    assert item["kind"] == "scrobble"
    # A listen is timed from when the play started: 367 s before the stop.
    assert item["occurred_at"].startswith("2026-11-20T20:57:58")


async def test_a_title_only_anime_episode_is_queued_for_anilist(gateway: Gateway) -> None:
    # AniList's resolver finds a show by title and year: no anilist or mal id is needed.
    connection = await gateway.connect(ALICE, "anilist")
    episode = watched_movie(content_type="anime_episode", external_ids=None)
    body = {"connection_id": str(connection), "request": episode}
    answer = await gateway.client.post(QUEUE, json=body, headers=gateway.auth(ALICE))
    assert answer.status == 202, await answer.text()
    assert [i["service"] for i in (await answer.json())["items"]] == ["anilist"]


@pytest.mark.parametrize(
    ("service", "request_body", "field"),
    [
        ("trakt", {"action": "rate", "rating": 9}, "request.action"),  # sync_ratings off
        ("trakt", {"action": "rate"}, "request.rating"),
        ("trakt", {"content_type": "track"}, "request.content_type"),
        ("trakt", {"progress_percent": None}, "request.progress_percent"),
        ("trakt", {"progress_percent": 101}, "request.progress_percent"),
        ("trakt", {"watched_at": "yesterday"}, "request.watched_at"),
        ("trakt", {"colour": "red"}, "request.colour"),
        ("trakt", {"content": {"title": ""}}, "request.content.title"),
        ("lastfm", {"content_type": "track"}, "request.content.artists"),
        ("anilist", {"content_type": "movie"}, "request.content_type"),
    ],
)
async def test_requests_that_cannot_be_work_are_422_naming_the_field(
    gateway: Gateway, service: str, request_body: dict[str, Any], field: str
) -> None:
    connection = await gateway.connect(ALICE, service)
    body = {"connection_id": str(connection), "request": watched_movie(**request_body)}
    answer = await gateway.client.post(QUEUE, json=body, headers=gateway.auth(ALICE))
    assert answer.status == 422, await answer.text()
    problem = await answer.json()
    assert field in [e["field"] for e in problem["errors"]]
    assert await gateway.sql("SELECT id FROM scrobbles") == []


async def test_a_disabled_connection_takes_no_work(gateway: Gateway) -> None:
    connection = await gateway.connect(ALICE, "trakt")
    await gateway.sql("UPDATE connections SET enabled = false")
    body = {"connection_id": str(connection), "request": watched_movie()}
    answer = await gateway.client.post(QUEUE, json=body, headers=gateway.auth(ALICE))
    assert answer.status == 422
    assert [e["field"] for e in (await answer.json())["errors"]] == ["connection_id"]


async def test_another_users_connection_is_not_found(gateway: Gateway) -> None:
    bobs = await gateway.connect(BOB, "trakt")
    for connection_id in (bobs, uuid.uuid4()):
        body = {"connection_id": str(connection_id), "request": watched_movie()}
        answer = await gateway.client.post(QUEUE, json=body, headers=gateway.auth(ALICE))
        assert answer.status == 404
    assert await gateway.sql("SELECT id FROM scrobbles") == []
