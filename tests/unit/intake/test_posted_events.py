"""The events endpoint's body: one object, an array or NDJSON, each event judged by the
validator ingest uses, its user mapped by the source."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from scrobble_intake.bodies import BodyError
from scrobble_intake.posted_events import MAX_EVENTS, answer_body, judge, split
from tests.support.events import event
from tests.unit.intake.support import ALICE, OWNER, source

SERVER_USER = "5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11"


def good(**extra: Any) -> dict[str, Any]:
    return {**event("stop", 9_500_000).to_json_dict(), "user_id": SERVER_USER, **extra}


def as_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_one_object_is_one_event_judged_as_sent() -> None:
    raw = json.dumps(good(), indent=2).encode()
    assert split(raw, "application/json") == [raw]


def test_an_array_is_its_elements() -> None:
    values = split(as_bytes([good(), good()]), "application/json")
    assert [json.loads(v)["action"] for v in values] == ["stop", "stop"]


def test_ndjson_is_its_lines_blank_lines_skipped() -> None:
    raw = as_bytes(good()) + b"\n\n" + as_bytes(good()) + b"\n"
    assert len(split(raw, "application/x-ndjson")) == 2


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"", "application/json", 400),
        (b"[]", "application/json", 400),
        (b'"stop"', "application/json", 400),
        (b"{not json", "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"\n\n", "application/x-ndjson", 400),
    ],
)
def test_bodies_that_hold_no_events_are_refused(raw: bytes, content_type: str, status: int) -> None:
    with pytest.raises(BodyError) as raised:
        split(raw, content_type)
    assert raised.value.status == status


def test_more_than_the_limit_is_refused() -> None:
    with pytest.raises(BodyError) as raised:
        split(as_bytes([good()] * (MAX_EVENTS + 1)), "application/json")
    assert raised.value.status == 413
    assert len(split(as_bytes([good()] * MAX_EVENTS), "application/json")) == MAX_EVENTS


def test_each_event_is_judged_and_mapped_on_its_own() -> None:
    mapped = source("events", mappings={SERVER_USER: ALICE})
    values = [
        as_bytes(good()),
        as_bytes({**good(), "action": "explode"}),
        as_bytes(good(user_id=str(uuid.uuid4()))),
        b"{nope",
        as_bytes({k: v for k, v in good().items() if k != "position_ms"}),
        as_bytes(good(extra_field="kept")),
    ]
    judged = judge(values, mapped)
    assert [a.index for a in judged.accepted] == [0, 5]
    assert all(a.user_id == ALICE for a in judged.accepted)
    published = [json.loads(a.value) for a in judged.accepted]
    assert [p["user_id"] for p in published] == [str(ALICE), str(ALICE)]
    assert published[1]["extra_field"] == "kept"  # otherwise unchanged
    assert [(r.index, r.error) for r in judged.rejected] == [
        (1, "schema"),
        (3, "not_json"),
        (4, "semantics"),
    ]
    assert [(s.index, s.error) for s in judged.skipped] == [(2, "unmapped")]
    body = answer_body(judged)
    assert body["accepted"] == 2
    assert body["rejected"][0]["problems"] == ["action: must be one of " + _actions()]


def _actions() -> str:
    return "start, pause, resume, progress, stop, rate, mark_watched"


def test_a_personal_events_source_gives_every_event_to_its_owner() -> None:
    judged = judge([as_bytes(good(user_id=str(uuid.uuid4())))], source("events"))
    assert [a.user_id for a in judged.accepted] == [OWNER]


def test_an_operator_events_source_takes_our_user_ids_as_they_are() -> None:
    ours = str(uuid.uuid4())
    judged = judge([as_bytes(good(user_id=ours))], source("events", owner=None))
    assert [str(a.user_id) for a in judged.accepted] == [ours]


def test_an_event_over_64_kib_is_rejected_like_ingest_would() -> None:
    big = good()
    big["content"]["album"] = "x" * 1000
    big["padding"] = "y" * 70_000
    judged = judge([as_bytes(big)], source("events"))
    assert [r.error for r in judged.rejected] == ["too_large"]


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_an_array_element_nested_past_the_bound_refuses_the_body() -> None:
    """300 levels reads (orjson takes 1024) but cannot be written again (orjson writes 254):
    it used to crash the route with a TypeError."""
    with pytest.raises(BodyError) as raised:
        split(as_bytes([good(), nested(300)]), "application/json")
    assert raised.value.status == 400
    assert "nested deeper than" in raised.value.detail


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (as_bytes(good(padding=nested(300))), "nested deeper than"),
        (as_bytes(good())[:-1] + b', "padding": 1e999}', "beyond a double"),
        (as_bytes(good())[:-1] + b', "padding": "\\ud800"}', "surrogate"),
    ],
)
def test_an_ndjson_event_with_an_unwritable_extra_field_is_rejected(
    line: bytes, problem: str
) -> None:
    """A field the event does not use, that the validator skips but the writer would not
    take: rejected with the reason, never a crash of the whole request."""
    values = split(line + b"\n" + as_bytes(good()), "application/x-ndjson")
    judged = judge(values, source("events"))
    assert [a.index for a in judged.accepted] == [1]
    assert [(r.index, r.error) for r in judged.rejected] == [(0, "not_json")]
    assert problem in judged.rejected[0].problems[0]
