"""The work message and the import message: what a writer encodes, a reader decodes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from scrobble_shared.import_message import ImportMessage, NotAnImportMessage, decode_job_id
from scrobble_shared.work import Work, WorkKind
from scrobble_shared.work_message import ScrobbleWork, WorkTopics, new_scrobble

USER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
CONNECTION = uuid.UUID("7aaf6f08-9856-49a3-a907-20d46a47f2d4")
TRACK = {
    "type": "track",
    "id": "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d04",
    "title": "Windowlicker",
    "artists": ["Aphex Twin"],
    "duration_ms": 367_000,
}


def test_a_row_s_message_reads_back_as_the_work_it_was() -> None:
    play = uuid.uuid4()
    event = uuid.uuid4()
    work = Work(
        connection_id=CONNECTION,
        service="lastfm",
        kind=WorkKind.SCROBBLE,
        dedupe_key=f"play:{play}:listen",
        occurred_at=datetime(2026, 12, 1, 20, 57, 58, tzinfo=UTC),
        progress_percent=100.0,
        play_id=play,
    )
    row = new_scrobble(work, USER, TRACK, event)

    read = ScrobbleWork.from_message(json.loads(row.request_json))

    assert read.scrobble_id == row.id
    assert (read.connection_id, read.user_id, read.service) == (CONNECTION, USER, "lastfm")
    assert (read.kind, read.dedupe_key) == (WorkKind.SCROBBLE, work.dedupe_key)
    assert read.occurred_at == work.occurred_at
    assert (read.progress_percent, read.rating) == (100.0, None)
    assert (read.play_id, read.source_event_id) == (play, event)
    assert read.content.title == "Windowlicker"
    assert read.content.artists == ["Aphex Twin"]
    assert (row.content_type, str(row.content_id)) == ("track", TRACK["id"])


def test_the_message_is_compact_json_and_an_integer_beyond_64_bits_is_kept() -> None:
    """orjson writes messages but no integer past 64 bits; a valid event can carry one (a
    show's year has no upper bound), and it must neither fail the batch nor change."""
    work = Work(
        connection_id=CONNECTION,
        service="trakt",
        kind=WorkKind.START,
        dedupe_key="event:1:start",
        occurred_at=datetime(2026, 12, 1, 20, 57, 58, tzinfo=UTC),
        progress_percent=12.5,
    )
    show = {"title": "Show", "year": 10**30}
    content = {**TRACK, "type": "episode", "season": 1, "number": 2, "show": show}
    for item in (TRACK, content):
        row = new_scrobble(work, USER, item, None)
        assert row.request_bytes == json.dumps(
            row.request, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        assert row.request_json == row.request_bytes.decode("utf-8")
    assert json.loads(row.request_json)["content"]["show"]["year"] == 10**30


def test_work_topics_are_per_service() -> None:
    topics = WorkTopics("playback.events.dlq", "scrobble.")
    assert topics.for_service("trakt") == "scrobble.trakt"


def test_an_import_message_names_its_job() -> None:
    start = ImportMessage(uuid.uuid4(), CONNECTION, USER, "trakt")
    assert decode_job_id(start.encode()) == start.job_id
    assert start.key == str(CONNECTION).encode()
    assert start.message_id == f"import:{start.job_id}"


@pytest.mark.parametrize(
    "value", [None, b"", b"not json", b"[]", b'{"job_id": 7}', b'{"job_id": "x"}', b"{}"]
)
def test_a_value_that_names_no_job_is_refused(value: bytes | None) -> None:
    with pytest.raises(NotAnImportMessage):
        decode_job_id(value)
