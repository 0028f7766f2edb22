"""Hostile input (issue 10, acceptance 4): 1,000 malformed bodies interleaved with good
webhooks against a running intake. No answer is a 5xx, everything on the topic is a valid
PlaybackEvent v1 that some request was answered 202 for, and every good one is there."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from scrobble_shared.events import parse_usable_event
from tests.support.events import event
from tests.support.intake import IntakeSetup
from tests.unit.intake.test_translate_emby import MOVIE as EMBY_MOVIE
from tests.unit.intake.test_translate_emby import emby
from tests.unit.intake.test_translate_jellyfin import JF_ALICE, MOVIE, jellyfin
from tests.unit.intake.test_translate_plex import MOVIE as PLEX_MOVIE
from tests.unit.intake.test_translate_plex import plex

pytestmark = pytest.mark.integration
ALICE = uuid.UUID("a11ce000-0000-4000-8000-000000000001")
MALFORMED = 1000
CONCURRENCY = 8


def good(i: int, paths: dict[str, str]) -> tuple[str, dict[str, Any], str | None]:
    """The i-th good request, a webhook of each server in turn, each a distinct event; and
    its event id when known before the answer (the events endpoint's own)."""
    position = 1_000 * (i + 1)
    which = i % 4
    if which == 0:
        payload = jellyfin("PlaybackProgress", MOVIE, PlaybackPositionTicks=position * 10_000)
        return paths["jellyfin"], {"json": payload}, None
    if which == 1:
        payload = plex("media.pause", {**PLEX_MOVIE, "viewOffset": position})
        return paths["plex"], {"files": {"payload": (None, json.dumps(payload))}}, None
    if which == 2:
        payload = emby("playback.pause", EMBY_MOVIE, position_ticks=position * 10_000)
        return paths["emby"], {"data": {"data": json.dumps(payload)}}, None
    posted = event("progress", position).to_json_dict()
    return paths["events"], {"json": posted}, posted["event_id"]


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def malformed(i: int, paths: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The i-th malformed request, of ten kinds."""
    jf, px, em, ev = paths["jellyfin"], paths["plex"], paths["emby"], paths["events"]
    text = {"Content-Type": "text/plain"}
    kind = i % 10
    if kind == 0:  # not JSON
        return jf, {"content": b'{"NotificationType": "PlaybackStart",', "headers": text}
    if kind == 1:  # wrong types everywhere
        wrong = {"NotificationType": ["PlaybackStop"], "ItemType": {"a": 1}, "Name": 12.5}
        return jf, {"json": {**jellyfin("PlaybackStop", MOVIE), **wrong}}
    if kind == 2:  # huge strings, just under the body limit
        if i % 20 == 2:
            return jf, {"json": jellyfin("PlaybackStart", MOVIE, ItemType="x" * 900_000)}
        return jf, {"json": jellyfin("PlaybackStart", MOVIE, Name="y" * 900_000, ItemId=str(i))}
    if kind == 3:  # deep nesting
        return em, {"content": deep(50_000), "headers": {"Content-Type": "application/json"}}
    if kind == 4:  # a content type the server never sends
        return px, {"content": b"<xml/>", "headers": {"Content-Type": "application/xml"}}
    if kind == 5:  # multipart without payload
        return px, {"files": {"thumb": ("t.jpg", b"\xff\xd8" * 1000, "image/jpeg")}}
    if kind == 6:  # 2 MiB
        return jf, {"content": b"[" + b"0," * (1024 * 1024) + b"0]", "headers": text}
    if kind == 7:  # a form whose data is not JSON, or not there
        field = {"data": "{broken"} if i % 20 == 7 else {"other": "x"}
        return em, {"data": field}
    if kind == 8:  # events that fail the schema, as NDJSON, with NULs and bad UTF-8
        lines = b'{"event_id": "\x00"}\n\xff\xfe\n' + json.dumps({"action": "stop"}).encode()
        return ev, {"content": lines, "headers": {"Content-Type": "application/x-ndjson"}}
    # numbers out of every range, and a payload that is a list
    if i % 20 == 9:
        return jf, {"json": [jellyfin("PlaybackStart", MOVIE)]}
    huge = jellyfin("PlaybackStop", MOVIE, PlaybackPositionTicks=10**40, RunTimeTicks=-5)
    return jf, {"json": huge}


async def test_malformed_bodies_interleaved_with_good_ones(intake_setup: IntakeSetup) -> None:
    setup = intake_setup
    paths = {
        "jellyfin": (await setup.source("jellyfin", mappings={JF_ALICE: ALICE}))[1],
        "plex": (await setup.source("plex", owner=ALICE))[1],
        "emby": (await setup.source("emby", owner=ALICE))[1],
        "events": (await setup.source("events", owner=ALICE))[1],
    }
    requests: list[tuple[bool, str, dict[str, Any], str | None]] = []
    for i in range(MALFORMED):
        requests.append((False, *malformed(i, paths), None))
        if i % 4 == 0:
            requests.append((True, *good(i // 4, paths)))
    intake = setup.process()
    await intake.start()
    statuses: Counter[int] = Counter()
    published_ids: set[str] = set()
    good_ids: list[str] = []
    queue: asyncio.Queue[tuple[bool, str, dict[str, Any], str | None]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            is_good, path, options, known_id = queue.get_nowait()
            answer = await http.post(path, **options)
            statuses[answer.status_code] += 1
            assert answer.status_code < 500, (answer.status_code, answer.text[:300])
            if is_good:
                assert answer.status_code == 202, answer.text
            if answer.status_code == 202:
                published = known_id or answer.json().get("event_id")
                if published is not None:
                    published_ids.add(published)
                    if is_good:
                        good_ids.append(published)

    try:
        base_url = f"http://127.0.0.1:{intake.metrics_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    finally:
        assert await intake.stop() == 0, intake.log_tail()
    print(f"answers: {dict(sorted(statuses.items()))}")
    log = intake.log_path.read_text()
    assert "Traceback" not in log
    assert "unhandled" not in log
    assert len(good_ids) == MALFORMED // 4
    on_topic = await setup.published(expected=len(published_ids))
    values = [parse_usable_event(m.value) for m in on_topic]  # raises on anything malformed
    for message, value in zip(on_topic, values, strict=True):
        assert message.key == value.user_id.encode()
    assert {v.event_id for v in values} == published_ids
    assert set(good_ids) <= published_ids
    assert len(values) == len(published_ids)  # each request's event once
    assert statuses[413] >= MALFORMED // 10
    assert statuses[415] >= MALFORMED // 10


def unwritable_events() -> list[tuple[str, bytes, str]]:
    """Bodies whose JSON the events route read but could not write out again: nesting past
    orjson's 254 levels (as an array element, or in a field the event does not use), a
    number beyond a double, a lone surrogate. Each used to be a 500."""
    posted = event("progress", 1_000).to_json_dict()
    line = json.dumps(posted)[:-1].encode()
    ndjson = "application/x-ndjson"
    return [
        ("array element", b"[" + b"[" * 300 + b"]" * 300 + b"]", "application/json"),
        ("deep extra field", line + b', "x": ' + b"[" * 300 + b"]" * 300 + b"}", ndjson),
        ("infinite number", line + b', "x": 1e999}', ndjson),
        ("lone surrogate", line + b', "x": "\\ud800"}', ndjson),
        ("deep webhook", b'{"a":' * 40 + b"1" + b"}" * 40, "application/json"),
    ]


async def test_bodies_that_could_not_be_written_out_again_are_400(
    intake_setup: IntakeSetup,
) -> None:
    events_path = (await intake_setup.source("events", owner=ALICE))[1]
    jellyfin_path = (await intake_setup.source("jellyfin", owner=ALICE))[1]
    intake = intake_setup.process()
    await intake.start()
    try:
        base_url = f"http://127.0.0.1:{intake.metrics_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            for name, body, content_type in unwritable_events():
                path = jellyfin_path if name == "deep webhook" else events_path
                answer = await http.post(path, content=body, headers={"Content-Type": content_type})
                assert answer.status_code == 400, (name, answer.status_code, answer.text[:300])
                assert answer.headers["content-type"] == "application/problem+json", name
    finally:
        assert await intake.stop() == 0, intake.log_tail()
    log = intake.log_path.read_text()
    assert "Traceback" not in log
    assert "Error handling request" not in log
