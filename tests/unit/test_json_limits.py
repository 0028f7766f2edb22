"""The bounded JSON reader shared by the gateway and the intake."""

from __future__ import annotations

from typing import Any

import pytest

from scrobble_shared.json_limits import (
    MAX_JSON_DEPTH,
    UnreadableJson,
    load_json,
    nesting_exceeds,
)


def arrays(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("value", "levels"),
    [(1, 0), ("[[[", 0), ([], 1), ({}, 1), ([{}], 2), ({"a": [1, {"b": []}], "c": {}}, 4)],
)
def test_nesting_counts_containers_on_the_deepest_path(value: Any, levels: int) -> None:
    assert not nesting_exceeds(value, levels)
    assert nesting_exceeds(value, levels - 1) == (levels > 0)


def test_the_bound_itself_is_read_and_one_more_level_is_refused() -> None:
    assert load_json(arrays(MAX_JSON_DEPTH)) == load_json(arrays(MAX_JSON_DEPTH).decode())
    for raw in (arrays(MAX_JSON_DEPTH + 1), arrays(5000), arrays(5000).decode()):
        with pytest.raises(UnreadableJson, match=f"nested deeper than {MAX_JSON_DEPTH}"):
            load_json(raw)


def test_brackets_inside_strings_do_not_count() -> None:
    raw = b'{"title": "' + b"[{" * 500 + b'"}'
    assert load_json(raw) == {"title": "[{" * 500}


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"NaN", b"[Infinity]", b"1e999", b'{"a": -1e400}', b'"\\ud800"', b"\xff"],
)
def test_what_is_not_json_we_take_is_refused_saying_so(raw: bytes) -> None:
    with pytest.raises(UnreadableJson, match=r"^not JSON: "):
        load_json(raw)
