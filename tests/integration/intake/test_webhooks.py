"""``scrobble intake`` as a process over the real broker and database: each server's
transport, every answer of CONTRACTS section 8, secrets rotated and kept out of logs."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scrobble_shared.events import parse_usable_event
from scrobble_shared.sources import SourceFilters
from tests.support.events import event
from tests.support.intake import IntakeSetup
from tests.support.services import ServiceProcess, run_cli
from tests.unit.intake.test_translate_emby import MOVIE as EMBY_MOVIE
from tests.unit.intake.test_translate_emby import emby
from tests.unit.intake.test_translate_jellyfin import EPISODE, JF_ALICE, MOVIE, jellyfin
from tests.unit.intake.test_translate_plex import MOVIE as PLEX_MOVIE
from tests.unit.intake.test_translate_plex import plex

pytestmark = pytest.mark.integration
SCROBBLE = str(Path(sys.executable).with_name("scrobble"))
ALICE = uuid.UUID("a11ce000-0000-4000-8000-000000000001")
OWNER = uuid.UUID("0a0e0000-0000-4000-8000-0000000000aa")
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 400 + b"\xff\xd9"


@pytest.fixture
async def intake(intake_setup: IntakeSetup) -> AsyncIterator[ServiceProcess]:
    proc = intake_setup.process(INTAKE_MAX_BODY="256KiB")
    await proc.start()
    yield proc
    assert await proc.stop() == 0, proc.log_tail()


def base(proc: ServiceProcess) -> str:
    return f"http://127.0.0.1:{proc.metrics_port}"


async def spaces(chunks: int) -> AsyncIterator[bytes]:
    """A body sent chunked, with no length declared up front."""
    for _ in range(chunks):
        yield b" " * 65_536


def events_body(*events: dict[str, Any]) -> bytes:
    return b"\n".join(json.dumps(e).encode() for e in events)


async def test_each_server_s_transport_is_published(
    intake_setup: IntakeSetup, intake: ServiceProcess
) -> None:
    setup = intake_setup
    _, jf = await setup.source("jellyfin", owner=OWNER, mappings={JF_ALICE: ALICE})
    _, px = await setup.source("plex", owner=OWNER)
    _, em = await setup.source("emby", owner=OWNER)
    _, ev = await setup.source("events", owner=OWNER)
    posted = event("start", 0, content_type="track").to_json_dict()
    stop = event("stop", 300_000, content_type="track").to_json_dict()
    emby_form = {"data": json.dumps(emby("playback.start", EMBY_MOVIE))}
    plex_payload = json.dumps(plex("media.play", PLEX_MOVIE))
    async with httpx.AsyncClient(base_url=base(intake), timeout=10) as http:
        answers = [
            await http.post(
                jf,
                content=json.dumps(jellyfin("PlaybackStart", MOVIE)),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            ),
            await http.post(jf, json=jellyfin("PlaybackStart", EPISODE)),
            await http.post(
                px,
                data={"payload": plex_payload},
                files={"thumb": ("thumb.jpg", JPEG, "image/jpeg")},
            ),
            await http.post(
                px, files={"payload": (None, json.dumps(plex("media.stop", PLEX_MOVIE)))}
            ),
            await http.post(em, json=emby("playback.pause", EMBY_MOVIE, position_ticks=10**9)),
            await http.post(em, data=emby_form),
            await http.post(
                em, files={"data": (None, json.dumps(emby("playback.stop", EMBY_MOVIE)))}
            ),
            await http.post(ev, json=posted),
            await http.post(ev, json=[stop]),
            await http.post(
                ev,
                content=events_body(event("start", 0).to_json_dict(), stop),
                headers={"Content-Type": "application/x-ndjson"},
            ),
        ]
    assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
    answered_ids = [a.json()["event_id"] for a in answers[:7]]
    published = await setup.published(expected=11)
    assert len(published) == 11
    values = [parse_usable_event(m.value) for m in published]
    for message, value in zip(published, values, strict=True):
        assert message.key == value.user_id.encode()
    by_id = {v.event_id: v for v in values}
    assert set(answered_ids) <= set(by_id)
    assert by_id[answered_ids[0]].user_id == str(ALICE)
    assert by_id[answered_ids[0]].content.title == "Heat"
    assert by_id[answered_ids[1]].content.show is not None
    assert [by_id[i].action.value for i in answered_ids[2:]] == [
        "start",
        "stop",
        "pause",
        "start",
        "stop",
    ]
    # The events source is personal: the owner's plays whatever user id was posted.
    posted_out = [v for v in values if v.event_id in (posted["event_id"], stop["event_id"])]
    assert {v.user_id for v in posted_out} == {str(OWNER)}
    # The stop was posted twice (array, NDJSON): the same event id, for ingest to take once.
    assert sum(v.event_id == stop["event_id"] for v in values) == 2


async def test_what_is_not_published_is_answered_without_an_error_to_retry(
    intake_setup: IntakeSetup, intake: ServiceProcess
) -> None:
    setup = intake_setup
    filters = SourceFilters(deny_libraries=("Kids",))
    _, jf = await setup.source("jellyfin", mappings={JF_ALICE: ALICE}, filters=filters)
    _, ev = await setup.source("events", owner=OWNER)
    unmapped = jellyfin("PlaybackStart", MOVIE, UserId="ff" * 16, NotificationUsername="eve")
    kids = jellyfin("PlaybackStart", MOVIE, LibraryNameByMaxPath="Kids")
    good = event("stop", 300_000, content_type="track").to_json_dict()
    bad = {**good, "event_id": "nope"}
    async with httpx.AsyncClient(base_url=base(intake), timeout=10) as http:
        ignored = await http.post(jf, json={"NotificationType": "ItemAdded", "Name": "New"})
        skipped = await http.post(jf, json=unmapped)
        filtered = await http.post(jf, json=kids)
        unknown = await http.post(jf.rsplit("/", 1)[0] + "/" + "A" * 32, json=MOVIE)
        other_kind = await http.post(jf.replace("/jellyfin/", "/plex/"), json=MOVIE)
        wrong_type = await http.post(jf, content=b"\x89PNG", headers={"Content-Type": "image/png"})
        not_json = await http.post(jf, content=b"{nope", headers={"Content-Type": "text/plain"})
        plex_without_payload = await http.post(
            jf.replace("/jellyfin/", "/plex/"), files={"thumb": ("t.jpg", JPEG, "image/jpeg")}
        )
        too_large = await http.post(jf, content=b"{" + b" " * 300_000 + b"}")
        chunked = await http.post(jf, content=spaces(5), headers={"Content-Type": "text/plain"})
        all_bad = await http.post(ev, json=[bad, bad])
        mixed = await http.post(ev, json=[bad, good])
    assert (ignored.status_code, ignored.content) == (204, b"")
    assert (skipped.status_code, skipped.json()["skipped"]) == (202, "unmapped")
    assert (filtered.status_code, filtered.json()["skipped"]) == (202, "library")
    for not_found in (unknown, other_kind):
        assert not_found.status_code == 404
        assert "detail" not in not_found.json()
    assert wrong_type.status_code == 415
    assert not_json.status_code == 400
    assert not_json.headers["Content-Type"].startswith("application/problem+json")
    assert "not JSON" in not_json.json()["detail"]
    assert plex_without_payload.status_code == 404  # a Jellyfin secret on the Plex route
    assert too_large.status_code == 413
    assert chunked.status_code == 413
    assert all_bad.status_code == 400
    assert [r["index"] for r in all_bad.json()["rejected"]] == [0, 1]
    assert mixed.status_code == 207
    assert mixed.json()["accepted"] == 1
    assert mixed.json()["rejected"][0]["problems"] == [
        "event_id: must be a UUID like 0b6c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a01"
    ]
    published = await setup.published(expected=1)
    assert [parse_usable_event(m.value).event_id for m in published] == [good["event_id"]]
    counted = await intake.metrics()
    for outcome in ("ignored", "unmapped", "filtered", "unknown_source", "too_large", "partial"):
        assert f'outcome="{outcome}"' in counted


async def test_plex_multipart_without_a_payload_is_a_400(
    intake_setup: IntakeSetup, intake: ServiceProcess
) -> None:
    _, px = await intake_setup.source("plex", owner=OWNER)
    async with httpx.AsyncClient(base_url=base(intake), timeout=10) as http:
        thumb_only = await http.post(px, files={"thumb": ("t.jpg", JPEG, "image/jpeg")})
        broken = await http.post(
            px,
            content=b"--x\r\nnot a part",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        huge_thumb = await http.post(
            px,
            data={"payload": json.dumps(plex("media.play", PLEX_MOVIE))},
            files={"thumb": ("t.jpg", JPEG * 4, "image/jpeg")},
        )
    assert thumb_only.status_code == 400
    assert "payload" in thumb_only.json()["detail"]
    assert broken.status_code == 400
    assert huge_thumb.status_code == 413  # the thumb counts against the limit, never kept


async def until_status(http: httpx.AsyncClient, path: str, body: Any, status: int) -> float:
    """Seconds until ``path`` answers ``status`` (the cache hears of the change)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < 10:
        if (await http.post(path, json=body)).status_code == status:
            return loop.time() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not answer {status} within 10 s")


async def test_sources_through_the_cli_rotation_and_removal(
    intake_setup: IntakeSetup, intake: ServiceProcess
) -> None:
    env = intake.env
    made = json.loads(
        await run_cli(
            "source",
            "add",
            "--kind",
            "jellyfin",
            "--name",
            "Attic",
            "--owner",
            str(OWNER),
            "--json",
            env=env,
        )
    )
    assert made["personal"] is True
    first_path = made["webhook_url"].removeprefix(base(intake))
    secret = first_path.rsplit("/", 1)[1]
    assert len(secret) >= 32
    human = await run_cli(
        "source",
        "map",
        "--source",
        made["id"],
        "--server-user",
        "Alice",
        "--user",
        str(ALICE),
        env=env,
    )
    assert "alice ->" in human
    listed = await run_cli("source", "list", env=env)
    assert made["id"] in listed
    assert secret not in listed
    payload = jellyfin("PlaybackStart", MOVIE, NotificationUsername="alice")
    async with httpx.AsyncClient(base_url=base(intake), timeout=10) as http:
        assert (await http.post(first_path, json=payload)).status_code == 202
        rotated = json.loads(
            await run_cli("source", "rotate", "--source", made["id"], "--json", env=env)
        )
        second_path = rotated["webhook_url"].removeprefix(base(intake))
        assert second_path != first_path
        waited = await until_status(http, first_path, payload, 404)
        for _ in range(5):
            assert (await http.post(first_path, json=payload)).status_code == 404
        assert (await http.post(second_path, json=payload)).status_code == 202
        await run_cli("source", "remove", "--source", made["id"], env=env)
        await until_status(http, second_path, payload, 404)
    print(f"old secret refused {waited * 1000:.0f} ms after the rotation")
    published = await intake_setup.published(expected=2)
    assert {parse_usable_event(m.value).user_id for m in published} == {str(ALICE)}
    log = intake.log_path.read_text()
    metrics = await intake.metrics()
    for path in (first_path, second_path):
        assert path.rsplit("/", 1)[1] not in log
        assert path.rsplit("/", 1)[1] not in metrics
    assert "/api/v1/intake/jellyfin/{secret}" in log
