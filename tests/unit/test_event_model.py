"""The playback event model against its JSON Schema: the contract's example, generated valid
and invalid events judged by both the model and jsonschema (the reference), the parser's
errors, and the helpers for rules the schema only describes."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel, ValidationError

from scrobble_shared import events
from scrobble_shared.events import (
    MAX_EVENT_BYTES,
    Action,
    ClientInfo,
    Content,
    ContentType,
    ExternalIds,
    InvalidEvent,
    PlaybackEvent,
    Show,
    parse_playback_event,
    playback_event_schema,
    semantic_problems,
)

SCHEMA = playback_event_schema()
Draft202012Validator.check_schema(SCHEMA)
REFERENCE = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)

_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _rfc4122_text(instance: object) -> bool:
    return not isinstance(instance, str) or _CANONICAL_UUID.fullmatch(instance) is not None


# The reference with one change: "uuid" means RFC 4122 text, the model's documented choice.
_SPEC_FORMATS = FormatChecker(formats=())
_SPEC_FORMATS.checkers = {
    **Draft202012Validator.FORMAT_CHECKER.checkers,
    "uuid": (_rfc4122_text, ()),
}
SPEC_UUID_REFERENCE = Draft202012Validator(SCHEMA, format_checker=_SPEC_FORMATS)

# Written out as CONTRACTS.md section 1 prints it.
CONTRACT_EXAMPLE = b"""
{"event_id": "0b6c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a01", "user_id": "5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11",
 "session_id": "s-42", "action": "stop", "occurred_at": "2026-11-20T21:04:05Z", "position_ms": 241000,
 "content": {"type": "track", "id": "2a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d22", "title": "Windowlicker",
   "duration_ms": 367000, "artists": ["Aphex Twin"], "album": "Windowlicker",
   "external_ids": {"musicbrainz_recording": "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"}}}
"""  # noqa: E501

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(CONTRACT_EXAMPLE)
    return document


def model_accepts(instance: Any) -> bool:
    try:
        PlaybackEvent.model_validate(instance)
    except ValidationError:
        return False
    return True


def assert_verdicts_agree(instance: Any) -> bool:
    """Both verdicts, which must agree but for the documented uuid spelling; the verdict."""
    reference = REFERENCE.is_valid(instance)
    model = model_accepts(instance)
    if model != reference:
        verdicts = f"model says {model}, jsonschema says {reference} for {instance!r}"
        assert reference, verdicts
        assert not SPEC_UUID_REFERENCE.is_valid(instance), verdicts
    return model


def encode(instance: Any) -> bytes:
    return json.dumps(instance, ensure_ascii=False).encode("utf-8")


# --- valid events, generated from the schema itself --------------------------------------

_KNOWN_KEYWORDS = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "default", "type", "required",
    "properties", "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum",
    "maximum", "items", "minItems",
}  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def uuid_texts() -> st.SearchStrategy[str]:
    spelled = st.tuples(st.uuids(), st.sampled_from([str.lower, str.upper, str.swapcase]))
    return st.one_of(
        spelled.map(lambda pair: pair[1](str(pair[0]))),
        st.just("00000000-0000-0000-0000-000000000000"),
    )


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes())
    fraction = draw(st.text(alphabet="0123456789", min_size=1, max_size=9).map(lambda d: "." + d))
    offset_minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    sign = "-" if offset_minutes < 0 else "+"
    numeric = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    return (
        moment.strftime("%Y-%m-%d")
        if moment.year >= 1000
        else f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    ) + (
        draw(st.sampled_from("Tt"))
        + moment.strftime("%H:%M:%S")
        + draw(st.sampled_from(["", fraction]))
        + draw(st.sampled_from(["Z", "z", numeric, "+00:00", "-00:00"]))
    )


def _string(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    if node.get("format") == "uuid":
        return uuid_texts()
    if node.get("format") == "date-time":
        return rfc3339_texts()
    if "pattern" in node:
        return st.from_regex(node["pattern"])
    low, high = node.get("minLength", 0), node.get("maxLength")
    options = [st.text(min_size=low, max_size=min(high or 40, 40))]
    if high is not None:
        # Exactly at the bound, often in characters outside the BMP (lengths count code points,
        # not UTF-16 units or bytes); a short random run repeated, as 1024 drawn characters
        # would make generation the slow part of the suite.
        seeds = st.text(min_size=1, max_size=5) | st.text(
            st.characters(min_codepoint=0x10000), min_size=1, max_size=5
        )
        options.append(seeds.map(lambda seed: (seed * high)[:high]))
    if low:
        options.append(st.text(min_size=low, max_size=low))
    return st.one_of(options)


def _integer(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    low, high = node.get("minimum"), node.get("maximum")
    bounds = [bound for bound in (low, high) if bound is not None]
    whole = st.integers(low, high)
    if bounds:
        whole = whole | st.sampled_from(bounds)
    # 2020-12: a number with a zero fraction is an integer, so 5.0 is valid too.
    as_float = whole.filter(lambda n: abs(n) < 2**53).map(float)
    return whole | as_float


def _number(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    low, high = node["minimum"], node["maximum"]
    return st.one_of(
        st.floats(low, high, allow_nan=False, allow_infinity=False),
        st.integers(int(low), int(high)),
        st.sampled_from([low, high, float(low), float(high)]),
    )


def _object(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    properties: dict[str, Any] = node.get("properties", {})
    required = set(node.get("required", []))
    known = st.fixed_dictionaries(
        {name: from_schema(sub, root) for name, sub in properties.items() if name in required},
        optional={
            name: from_schema(sub, root) for name, sub in properties.items() if name not in required
        },
    )
    unknown = st.dictionaries(
        st.text(max_size=8).filter(lambda key: key not in properties), json_values, max_size=2
    )
    return st.builds(lambda fields, extra: {**extra, **fields}, known, unknown)


def from_schema(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against ``node``, for the keywords this schema uses (others fail loudly)."""
    unsupported = set(node) - _KNOWN_KEYWORDS
    assert not unsupported, f"teach the generator {unsupported}"
    if "$ref" in node:
        assert node["$ref"].startswith("#/$defs/")
        return from_schema(root["$defs"][node["$ref"].removeprefix("#/$defs/")], root)
    if "const" in node:
        return st.sampled_from([node["const"], float(node["const"])])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node["type"]
    if kind == "object":
        return _object(node, root)
    if kind == "array":
        low = node.get("minItems", 0)
        return st.lists(from_schema(node["items"], root), min_size=low, max_size=low + 3)
    if kind == "string":
        return _string(node)
    if kind == "integer":
        return _integer(node)
    if kind == "number":
        return _number(node)
    raise AssertionError(f"teach the generator type {kind}")


valid_events = from_schema(SCHEMA, SCHEMA)


# --- invalid events: targeted mutations ----------------------------------------------------

_ID = "0b6c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a01"
_LONG = "x" * 1025
_ASTRAL_LONG = "\U0001f3b5" * 1025

# (path, value that makes the event invalid); the value _DELETE removes the property instead.
_DELETE = object()


def each(path: tuple[str, ...], *values: Any) -> list[tuple[tuple[str, ...], Any]]:
    return [(path, value) for value in values]


# fmt: off
TARGETED: list[tuple[tuple[str, ...], Any]] = [
    *[((name,), _DELETE) for name in ("event_id", "user_id", "action", "occurred_at", "content")],
    *[(("content", name), _DELETE) for name in ("type", "id", "title")],
    *each(("schema_version",), 2, 0, "1", True, 1.5, None),
    *[
        ((field,), bad)
        for field in ("event_id", "user_id")
        for bad in (
            "{" + _ID + "}", _ID.replace("-", ""), "urn:uuid:" + _ID, _ID[:-1], _ID + "0",
            "g" + _ID[1:], " " + _ID, "", 7, None, uuid.UUID(_ID).int,
        )
    ],
    *each(("content", "id"), _ID[:-1], "not-a-uuid", 1),
    *each(("session_id",), "", "x" * 129, "\U0001f3b5" * 129, 42, None),
    *each(("action",), "play", "START", "", 1, None, ["stop"]),
    *[
        ((field,), bad)
        for field in ("occurred_at", "watched_at")
        for bad in (
            "2026-11-20T21:04:05", "2026-11-20 21:04:05Z", "2026-11-20T21:04Z",
            "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-20T24:00:00Z",
            "2026-11-20T23:59:60Z", "2026-11-20T21:04:05+0100", "2026-11-20T21:04:05+24:00",
            "0000-01-01T00:00:00Z", "2026-11-20", "2026-11-20T21:04:05.Z",
            "2026-11-20T21:04:05Z\n\n", "\n2026-11-20T21:04:05Z", "+2026-11-20T21:04:05Z",
            "2026-11-20T21:04:05Z ", 1763672645, None,
        )
    ],
    *each(("position_ms",), -1, 1.5, True, "5", None, [], -1.0),
    *each(("progress_percent",), -0.001, 100.001, 101, True, "50", None),
    *each(("rating",), 0.99, 10.01, 0, 11, False, "8", 10**400),
    *each(("content",), [], "movie", None, 1),
    *each(("content", "type"), "book", "Movie", "", 1, None),
    *each(("content", "title"), "", _LONG, _ASTRAL_LONG, 5, None, ["t"]),
    *each(("content", "duration_ms"), 0, -5, 1.5, True, "1000"),
    *each(("content", "year"), 1799, 2201, 1799.0, 2000.5, "2000", True),
    *each(("content", "show"), "Show", {}, {"title": ""}, {"title": 1}, []),
    *each(("content", "show", "year"), "1999", 1999.5, True, None),
    *each(("content", "show", "title"), _LONG, None),
    *[
        (("content", name), bad)
        for name in ("season", "number", "track_number")
        for bad in (-1, True, 0.5)
    ],
    *each(("content", "episode_count"), 0, -1, "3"),
    *each(("content", "artists"), [], [""], [_LONG], "Aphex Twin", [1], [None], None),
    *[
        (("content", name), bad)
        for name in ("album", "album_artist")
        for bad in (_LONG, _ASTRAL_LONG, 1)
    ],
    *each(
        ("content", "external_ids", "imdb"),
        "nm0000001", "tt", "TT123", " tt1", "tt1x", "tt12a", "tt1\n\n", "tt\u0661", 133093,
    ),
    *[
        (("content", "show", "external_ids", name), bad)
        for name in ("tmdb", "tvdb", "trakt", "simkl", "anilist", "mal", "anidb")
        for bad in (0, -1, True, 1.5, "5")
    ],
    *[
        (("content", "external_ids", name), bad)
        for name in ("tmdb", "mal")
        for bad in (0, True, 2.5, "5", None)
    ],
    *[(("content", "external_ids", name), 5) for name in ("trakt_slug", "isrc")],
    *[
        (("content", "external_ids", name), bad)
        for name in ("musicbrainz_recording", "musicbrainz_release", "musicbrainz_release_group")
        for bad in ("nope", _ID.replace("-", ""), 5)
    ],
    *each(("content", "external_ids", "musicbrainz_artists"), _ID, ["nope"], [5]),
    *each(("content", "external_ids"), [], "tt0133093"),
    *each(("client",), "vlc", [], None),
    *[
        (("client", name), bad)
        for name, limit in (("name", 256), ("version", 64), ("device", 256))
        for bad in ("x" * (limit + 1), "\U0001f3b5" * (limit + 1), 5)
    ],
]
# fmt: on


def apply(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(document)
    holder = mutated
    for name in path[:-1]:
        # A show needs its title, or the mutation would test the missing title instead.
        fresh: dict[str, Any] = {"title": "Show"} if name == "show" else {}
        if not isinstance(holder.get(name), dict):
            holder[name] = fresh
        holder = holder[name]
    if value is _DELETE:
        holder.pop(path[-1], None)
    else:
        holder[path[-1]] = copy.deepcopy(value)
    return mutated


def display(path: tuple[str, ...]) -> str:
    return ".".join(path)


# --- invalid or not: random mutations ------------------------------------------------------

_EDIT_ALPHABET = "-{}_x0aAfFgG:TtZz+. \n\u0661\U0001f3b5"


def locations(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(node, dict):
        for key, child in node.items():
            found += locations(child, (*here, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += locations(child, (*here, index))
    return found


def _edit_string(draw: st.DrawFn, text: str) -> str:
    where = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(_EDIT_ALPHABET))
    kind = draw(st.sampled_from(["insert", "delete", "replace", "case"]))
    if kind == "insert":
        return text[:where] + char + text[where:]
    if kind == "delete":
        return text[:where] + text[where + 1 :]
    if kind == "case":
        return text.swapcase()
    return text[:where] + char + text[where + 1 :]


def _edit_number(draw: st.DrawFn, number: float) -> Any:
    kind = draw(st.sampled_from(["plus", "minus", "negate", "float", "half", "string", "bool"]))
    edits: dict[str, Callable[[], Any]] = {
        "plus": lambda: number + 1,
        "minus": lambda: number - 1,
        "negate": lambda: -number,
        "float": lambda: float(number),
        "half": lambda: number + 0.5,
        "string": lambda: str(number),
        "bool": lambda: bool(number),
    }
    return edits[kind]()


@st.composite
def randomly_mutated_events(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(draw(valid_events))
    for _ in range(draw(st.integers(1, 3))):
        places = locations(document)
        place = draw(st.sampled_from(places[1:]))  # not the root: parsing guards that
        parent: Any = document
        for step in place[:-1]:
            parent = parent[step]
        key = place[-1]
        current = parent[key]
        kind = draw(st.sampled_from(["replace", "delete", "edit", "wrap", "add"]))
        if kind == "delete":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(json_values)
        elif kind == "wrap":
            parent[key] = [current]
        elif kind == "add" and isinstance(current, dict):
            current[draw(st.sampled_from([*SCHEMA["properties"], "x"]))] = draw(json_values)
        elif isinstance(current, str):
            parent[key] = _edit_string(draw, current)
        elif isinstance(current, int | float) and not isinstance(current, bool):
            parent[key] = _edit_number(draw, current)
        else:
            parent[key] = draw(json_values)
    return document


# --- the contract's example and the model's surface ----------------------------------------


def test_contract_example_parses() -> None:
    event = parse_playback_event(CONTRACT_EXAMPLE)
    assert REFERENCE.is_valid(example())
    assert event.action is Action.STOP
    assert event.content.type is ContentType.TRACK
    assert event.content.artists == ["Aphex Twin"]
    assert event.content.external_ids is not None
    assert (
        event.content.external_ids.musicbrainz_recording == "bd1fbd09-5b3c-45c4-a0e1-3a5d5f3a1f11"
    )
    assert event.schema_version == 1
    assert event.occurred_at.isoformat() == "2026-11-20T21:04:05+00:00"
    assert semantic_problems(event) == []
    assert event.progress_percent_effective() == pytest.approx(241000 / 367000 * 100)


def test_to_json_dict_round_trips_and_leaves_out_what_was_not_sent() -> None:
    event = parse_playback_event(CONTRACT_EXAMPLE)
    document = event.to_json_dict()
    assert document == {"schema_version": 1, **example()}
    assert PlaybackEvent.model_validate(document) == event


def test_reference_validator_checks_uuid_and_date_time_formats() -> None:
    # Without rfc3339-validator (jsonschema's "format" extra) date-time would pass unchecked.
    assert {"uuid", "date-time"} <= set(Draft202012Validator.FORMAT_CHECKER.checkers)
    assert not REFERENCE.is_valid({**example(), "event_id": "not-a-uuid"})
    assert not REFERENCE.is_valid({**example(), "occurred_at": "2026-11-20T21:04:05"})
    assert not REFERENCE.is_valid({**example(), "occurred_at": "yesterday"})


def test_the_package_ships_the_schema_the_model_mirrors() -> None:
    assert SCHEMA["$id"] == "playback-event.v1.schema.json"
    content = SCHEMA["properties"]["content"]
    pairs: list[tuple[dict[str, Any], type[BaseModel]]] = [
        (SCHEMA, PlaybackEvent),
        (content, Content),
        (content["properties"]["show"], Show),
        (SCHEMA["$defs"]["external_ids"], ExternalIds),
        (SCHEMA["properties"]["client"], ClientInfo),
    ]
    for node, model in pairs:
        assert set(node["properties"]) == set(model.model_fields), model
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        assert set(node.get("required", [])) == required, model


# --- generated agreement -------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(valid_events)
def test_generated_valid_events_are_valid_for_both(document: dict[str, Any]) -> None:
    assert REFERENCE.is_valid(document), list(REFERENCE.iter_errors(document))
    event = PlaybackEvent.model_validate(document)
    again = event.to_json_dict()
    assert REFERENCE.is_valid(again)
    assert PlaybackEvent.model_validate(again) == event
    raw = encode(document)
    if len(raw) <= MAX_EVENT_BYTES:
        assert parse_playback_event(raw) == event


@PROPERTY_SETTINGS
@given(valid_events, st.sampled_from(TARGETED))
def test_targeted_mutations_are_invalid_for_both(
    document: dict[str, Any], mutation: tuple[tuple[str, ...], Any]
) -> None:
    path, value = mutation
    mutated = apply(document, path, value)
    assert not REFERENCE.is_valid(mutated)
    assert not model_accepts(mutated)
    with pytest.raises(InvalidEvent) as caught:
        parse_playback_event(encode(mutated))
    # The problem is reported at the mutated property (or, for a whole object, inside it).
    assert any(problem.startswith(display(path)) for problem in caught.value.problems), (
        caught.value.problems
    )


def test_every_targeted_mutation_is_invalid_on_the_example() -> None:
    for path, value in TARGETED:
        mutated = apply(example(), path, value)
        assert not REFERENCE.is_valid(mutated), (path, value)
        assert not model_accepts(mutated), (path, value)


@PROPERTY_SETTINGS
@given(randomly_mutated_events())
def test_random_mutations_get_the_same_verdict(document: Any) -> None:
    assert_verdicts_agree(document)


# --- edges, pinned -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("schema_version",), 1.0),
        (("position_ms",), 241000.0),
        (("position_ms",), -0.0),
        (("position_ms",), 10**30),
        (("content", "year"), 2200.0),
        (("content", "show"), {"title": "S", "year": -(10**40)}),
        (("progress_percent",), 100),
        (("rating",), 10),
        (("occurred_at",), "2026-11-20t21:04:05.123456789z"),
        (("occurred_at",), "0001-01-01T00:00:00-23:59"),
        (("occurred_at",), "2024-02-29T23:59:59+23:59"),
        (("event_id",), "00000000-0000-0000-0000-000000000000"),
        (("event_id",), _ID.upper()),
        (("content", "title"), "\U0001f3b5" * 1024),
        (("content", "title"), "\x00"),
        (("session_id",), "x" * 128),
        # Python's ``$`` (re.search in jsonschema, re.match in rfc3339-validator) matches before
        # one final newline, so the reference takes these; the model agrees.
        (("content", "external_ids", "imdb"), "tt0133093\n"),
        (("occurred_at",), "2026-11-20T21:04:05Z\n"),
    ],
)
def test_edge_values_both_accept(path: tuple[str, ...], value: Any) -> None:
    document = apply(example(), path, value)
    assert REFERENCE.is_valid(document)
    assert model_accepts(document)


@pytest.mark.parametrize(
    "spelling",
    [
        _ID + "-",
        _ID + "}",
        _ID[:24] + "urn:" + _ID[24:],
        "0x" + _ID[2:],
        "+" + _ID[1:],
        _ID[:-2] + "_" + _ID[-1],
        _ID[:24] + "_" + _ID[25:],
        _ID[:24] + "\u0661" + _ID[25:],
    ],
)
def test_documented_divergence_lax_uuid_spellings(spelling: str) -> None:
    # jsonschema parses with uuid.UUID (which strips "urn:", "{}", hyphens and lets int() take
    # "0x", "+" and "_") and then only checks the hyphen positions; the model wants RFC 4122.
    document = {**example(), "event_id": spelling}
    assert REFERENCE.is_valid(document)
    assert not model_accepts(document)
    assert not assert_verdicts_agree(document)


def test_documented_divergence_lone_surrogates() -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"Windowlicker"', b'"Window\\ud800licker"', 1)
    assert REFERENCE.is_valid(json.loads(raw))
    with pytest.raises(InvalidEvent, match=r"content\.title: must be valid Unicode text"):
        parse_playback_event(raw)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(constant: bytes) -> None:
    raw = CONTRACT_EXAMPLE.replace(b'"position_ms": 241000', b'"progress_percent": ' + constant)
    with pytest.raises(InvalidEvent, match="not JSON") as caught:
        parse_playback_event(raw)
    assert caught.value.reason == "not_json"


# --- the quick reading (orjson) against the exact one (the standard library) ---------------


def assert_readings_agree(raw: bytes) -> None:
    """The quick reading takes nothing the exact one refuses, and what both take is equal."""
    quick = events._read_quickly(raw)
    if quick is not None:
        assert events._read_exactly(raw) == quick


@PROPERTY_SETTINGS
@given(valid_events)
def test_readings_agree_on_generated_valid_events(document: dict[str, Any]) -> None:
    assert_readings_agree(encode(document))


@PROPERTY_SETTINGS
@given(randomly_mutated_events())
def test_readings_agree_on_random_mutations(document: Any) -> None:
    assert_readings_agree(encode(document))


# Spelled as bytes: JSON that Python's json.dumps would not write, or would write
# differently.
_HOSTILE_VALUES = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"-1e400",
    b"1" * 400,
    b"1" * 5000,
    str(2**64).encode(),
    str(2**64 + 1).encode(),
    str(-(2**63) - 1).encode(),
    str(10**30).encode(),
    b"18446744073709551615",
    b"1e19",
    b"-9.3e18",
    b'"\\ud800"',
    b'"x\\udc00"',
    b"[" * 33 + b"]" * 33,
    b'{"a":' * 33 + b"1" + b"}" * 33,
]
_HOSTILE_PLACES = [
    ("future",),
    ("content", "future"),
    ("position_ms",),
    ("schema_version",),
    ("progress_percent",),
    ("rating",),
    ("content", "title"),
    ("content", "duration_ms"),
    ("content", "year"),
    ("content", "show", "year"),
    ("content", "external_ids", "tmdb"),
]


@PROPERTY_SETTINGS
@given(valid_events, st.sampled_from(_HOSTILE_PLACES), st.sampled_from(_HOSTILE_VALUES))
def test_readings_agree_on_hostile_values(
    document: dict[str, Any], place: tuple[str, ...], value: bytes
) -> None:
    raw = encode(apply(document, place, "HOSTILE")).replace(b'"HOSTILE"', value)
    assert_readings_agree(raw)


@pytest.mark.parametrize("value", [2**64 + 1, -(2**63) - 1, 10**30 + 1])
def test_an_integer_beyond_64_bits_keeps_its_value(value: int) -> None:
    """orjson reads it as the nearest float; the event has the integer that was sent."""
    document = apply(example(), ("content", "external_ids", "tmdb"), abs(value))
    document["content"]["show"] = {"title": "Show", "year": value}
    event = parse_playback_event(encode(document))
    assert event.content.external_ids is not None
    assert event.content.external_ids.tmdb == abs(value)
    assert event.content.show is not None
    assert event.content.show.year == value


# --- the parser's errors -------------------------------------------------------------------


def problems_of(document: Any) -> list[str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_playback_event(encode(document))
    assert caught.value.reason == "schema"
    return caught.value.problems


def test_problem_messages_read_as_path_and_rule() -> None:
    document = example()
    document["content"]["type"] = "book"
    document["content"]["artists"] = ["Aphex Twin", ""]
    document["occurred_at"] = "2026-11-20T21:04:05"
    document["position_ms"] = True
    document["session_id"] = None
    del document["user_id"]
    document["content"]["external_ids"]["imdb"] = "nm1"
    assert problems_of(document) == [
        "user_id: is required",
        "session_id: must not be null (leave the property out)",
        "occurred_at: must be an RFC 3339 date-time with an offset, like 2026-11-20T21:04:05Z",
        "position_ms: must be an integer",
        "content.type: must be one of movie, episode, track, anime_episode",
        "content.artists[1]: must not be empty",
        "content.external_ids.imdb: must be an IMDb id like tt0133093",
    ]
    with pytest.raises(InvalidEvent) as caught:
        parse_playback_event(encode(document))
    assert str(caught.value).startswith("invalid playback event: user_id: is required; ")


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("action",), "play", "action: must be one of start, pause, resume, progress, stop, "
         "rate, mark_watched"),
        (("event_id",), "{" + _ID + "}", "event_id: must be a UUID like " + _ID),
        (("schema_version",), 2, "schema_version: must be 1"),
        (("rating",), 11, "rating: must be at most 10"),
        (("progress_percent",), "5", "progress_percent: must be a number"),
        (("content", "year"), 1799, "content.year: must be at least 1800"),
        (("content", "title"), _ASTRAL_LONG, "content.title: must be at most 1024 characters"),
        (("content", "artists"), [], "content.artists: must have at least 1 item"),
        (("content",), [], "content: must be an object"),
        (("content", "show"), {}, "content.show.title: is required"),
        (("occurred_at",), "2023-02-29T00:00:00Z", "occurred_at: must be a real calendar date "
         "and time"),
    ],
)  # fmt: skip
def test_one_problem_message(path: tuple[str, ...], value: Any, problem: str) -> None:
    assert problems_of(apply(example(), path, value)) == [problem]


def test_message_stays_short_with_many_problems() -> None:
    document = apply(example(), ("content", "artists"), [""] * 500)
    with pytest.raises(InvalidEvent) as caught:
        parse_playback_event(encode(document))
    assert len(caught.value.problems) == 500
    message = str(caught.value)
    assert len(message) < 1000
    assert message.startswith("invalid playback event: content.artists[0]: must not be empty; ")
    assert re.search(r"; and \d+ more$", message)


def test_size_limit_is_64_kib_of_bytes() -> None:
    document = example()
    document["padding"] = ""
    room = MAX_EVENT_BYTES - len(encode(document))
    # Two bytes per "é" in UTF-8: the limit counts bytes, not characters.
    document["padding"] = "é" * (room // 2) + "x" * (room % 2)
    at_limit = encode(document)
    assert len(at_limit) == MAX_EVENT_BYTES
    assert parse_playback_event(at_limit).event_id == _ID
    with pytest.raises(InvalidEvent, match="65537 bytes, at most 65536") as caught:
        parse_playback_event(at_limit + b" ")
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"),
    [
        (b"", "not_json", "not JSON: Expecting value at 1:1"),
        (b"{", "not_json", "not JSON"),
        (CONTRACT_EXAMPLE[:-3], "not_json", "not JSON"),
        (b"{'event_id': 1}", "not_json", "not JSON"),
        (b"1" * 5000, "not_json", "not JSON"),
        (b"[" * 50000, "not_json", "not JSON"),
        (b"\xef\xbb\xbf{}", "not_json", "not JSON"),
        (b"\xff{}", "not_utf8", "not UTF-8: invalid start byte at byte 0"),
        (CONTRACT_EXAMPLE.replace(b"Aphex", b"Aph\xe9x"), "not_utf8", "not UTF-8"),
        (b"[]", "not_object", "not a JSON object but an array"),
        (b'"event"', "not_object", "not a JSON object but a string"),
        (b"null", "not_object", "not a JSON object but null"),
        (b"42", "not_object", "not a JSON object but a number"),
    ],
)
def test_unusable_values_say_why(raw: bytes, reason: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_playback_event(raw)
    assert caught.value.reason == reason
    assert fragment in str(caught.value)


def test_unknown_properties_are_ignored_at_every_level() -> None:
    document = apply(example(), ("future",), {"nested": [1, 2]})
    document["content"]["mood"] = "calm"
    document["content"]["external_ids"]["deezer"] = 3135556
    assert REFERENCE.is_valid(document)
    event = parse_playback_event(encode(document))
    assert event.to_json_dict() == {"schema_version": 1, **example()}


# --- rules the schema only describes -------------------------------------------------------


@pytest.mark.parametrize("action", ["start", "pause", "resume", "progress", "stop"])
def test_play_actions_without_position_are_valid_but_reported(action: str) -> None:
    document = {**example(), "action": action}
    del document["position_ms"]
    assert REFERENCE.is_valid(document)
    event = parse_playback_event(encode(document))
    assert semantic_problems(event) == [f"position_ms: required for action {action}"]


def test_rate_without_rating_is_valid_but_reported() -> None:
    document = {**example(), "action": "rate"}
    event = parse_playback_event(encode(document))
    assert semantic_problems(event) == ["rating: required for action rate"]
    rated = parse_playback_event(encode({**document, "rating": 8}))
    assert semantic_problems(rated) == []


def test_mark_watched_needs_nothing_more() -> None:
    document = {**example(), "action": "mark_watched"}
    del document["position_ms"]
    assert semantic_problems(parse_playback_event(encode(document))) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"progress_percent": 12.5}, 12.5),
        ({"progress_percent": 0}, 0.0),
        ({"position_ms": 183500}, 50.0),
        ({"position_ms": 400000}, 100.0),
        ({"position_ms": 0}, 0.0),
        ({"position_ms": None}, None),
        ({"duration_ms": None}, None),
    ],
)
def test_progress_percent_effective(changes: dict[str, Any], expected: float | None) -> None:
    document = example()
    for name, value in changes.items():
        holder = document["content"] if name == "duration_ms" else document
        if value is None:
            del holder[name]
        else:
            holder[name] = value
    assert parse_playback_event(encode(document)).progress_percent_effective() == expected
