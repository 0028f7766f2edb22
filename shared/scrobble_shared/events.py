"""The playback event (CONTRACTS section 1) as a pydantic model, and its parser.

``contracts/playback-event.v1.schema.json`` is the contract; :class:`PlaybackEvent` accepts
exactly the JSON values that schema accepts, as judged by ``jsonschema``'s
``Draft202012Validator`` with its format checker (the reference the unit tests compare against
with generated valid and invalid events). Pydantic's own coercions are switched off where they
would disagree: integers take ``1`` and ``1.0`` (2020-12 counts a zero fraction as an integer)
but not ``true`` or ``"1"``; numbers take no booleans or strings; ``null`` is never a value;
date-times must carry an offset; lengths count code points.

Deliberate divergences from that reference, all stricter, all on values no media server sends:

- ``format: uuid``: the reference runs the text through :class:`uuid.UUID` and then only checks
  the four hyphen positions, so it also takes e.g. ``...-123456789abc-`` (extra hyphens), a
  trailing ``}``, ``0x``/``+`` prefixes or ``_`` inside. Those are not RFC 4122 text, which is
  what the format means, and they would fail later as database keys, so only the canonical
  8-4-4-4-12 hex spelling (either case) passes here.
- Strings holding a lone UTF-16 surrogate (JSON ``"\\ud800"``): the reference accepts them;
  they cannot be encoded as UTF-8 for Kafka, Postgres or an HTTP body, so they are rejected.
- ``NaN`` and ``Infinity`` are not JSON; :func:`parse_playback_event` refuses them as "not JSON"
  although Python's ``json`` module would read them.

Kept on purpose to agree with the reference: a single trailing newline after a date-time or an
IMDb id (``re.search``/``re.match`` with ``$``, which matches before a final ``\\n``), and
lower-case ``t``/``z`` in date-times.

Rules that the schema only states in descriptions (``position_ms`` for play actions, ``rating``
for ``rate``) are not validation here, so the model never rejects what the schema allows;
:func:`semantic_problems` reports them for ingest to decide on.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from enum import StrEnum
from importlib import resources
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AllowInfNan,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError, core_schema

from scrobble_shared.json_limits import UnreadableJson, load_json, nesting_exceeds, too_deep_message

MAX_EVENT_BYTES: Final = 64 * 1024
"""Largest accepted Kafka value, in bytes of UTF-8 (CONTRACTS section 1)."""

MAX_MILLISECONDS: Final = 2**53 - 1
"""The largest position or length an event may carry (the largest integer a double holds
exactly, far below Postgres' bigint); 285,000 years, so no real item comes near it."""

SCHEMA_RESOURCE: Final = "contracts/playback-event.v1.schema.json"
"""Where the JSON Schema lives inside this package."""

# Keeps a dead letter's error.message header and log lines short whatever the input.
_MESSAGE_BUDGET: Final = 900

_PLAY_ACTIONS_NEEDING_POSITION: Final = frozenset({"start", "pause", "resume", "progress", "stop"})


def playback_event_schema() -> dict[str, Any]:
    """The JSON Schema the model mirrors, read from the copy shipped in this package."""
    text = resources.files("scrobble_shared").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class Action(StrEnum):
    """What happened: five play actions, a rating, or a manual 'watched' mark."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    PROGRESS = "progress"
    STOP = "stop"
    RATE = "rate"
    MARK_WATCHED = "mark_watched"


class ContentType(StrEnum):
    """The kind of item; it decides which services can take the event (CONTRACTS section 2)."""

    MOVIE = "movie"
    EPISODE = "episode"
    TRACK = "track"
    ANIME_EPISODE = "anime_episode"


class InvalidEvent(Exception):
    """A Kafka value that is not a usable playback event; ingest dead-letters it.

    ``reason`` is a short stable word for metrics and the ``error.class`` header
    (``too_large``, ``not_utf8``, ``not_json``, ``not_object``, ``schema``); ``problems``
    lists every schema problem as ``path.to.field: message``.
    """

    def __init__(self, reason: str, problems: list[str]) -> None:
        self.reason = reason
        self.problems = problems
        super().__init__(_summarise(problems))


def _summarise(problems: list[str]) -> str:
    # Stop listing before the budget runs out rather than cutting a problem in half.
    shown: list[str] = []
    used = len("invalid playback event: ")
    for problem in problems:
        if shown and used + len(problem) + 2 > _MESSAGE_BUDGET:
            break
        shown.append(problem[:_MESSAGE_BUDGET])
        used += len(shown[-1]) + 2
    text = "invalid playback event: " + "; ".join(shown)
    if len(shown) < len(problems):
        text += f"; and {len(problems) - len(shown)} more"
    return text


# --- JSON Schema value types -------------------------------------------------------------


# Validation context of :func:`parse_playback_event`'s quick reading (orjson), which reads
# an integer below -2**63 or from 2**64 up as the nearest float.
_QUICK_READING: Final = {"reader": "orjson"}
_ROUNDED_FROM: Final = 2**63


def _whole_float(value: float, info: core_schema.ValidationInfo) -> int:
    if not value.is_integer():
        raise PydanticCustomError("json_integer", "must be an integer")
    if abs(value) >= _ROUNDED_FROM and info.context == _QUICK_READING:
        # Maybe an integer that orjson rounded: the exact reading keeps its value.
        raise PydanticCustomError("json_integer_rounded", "may have been rounded in reading")
    return int(value)


class _JsonInteger:
    """A JSON Schema integer within bounds: an int, or a float with a zero fraction (Draft
    2020-12, and jsonschema from draft 6 on, call 5.0 an integer), never a bool (an int
    subclass in Python, never a JSON integer). Built from pydantic-core's own validators, so
    an int costs no Python call; only a float sent for an integer does."""

    def __init__(self, ge: int | None = None, le: int | None = None) -> None:
        self.ge, self.le = ge, le

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        whole_float = core_schema.chain_schema(
            [
                core_schema.float_schema(strict=True, allow_inf_nan=False),
                core_schema.with_info_plain_validator_function(_whole_float),
            ]
        )
        integer = core_schema.union_schema(
            [core_schema.int_schema(strict=True), whole_float],
            mode="left_to_right",
            custom_error_type="json_integer",
            custom_error_message="must be an integer",
        )
        steps: list[core_schema.CoreSchema] = [integer]
        if self.ge is not None or self.le is not None:
            # After the union, so a number out of bounds is told so rather than "must be
            # an integer" (the union's one error for anything it refuses).
            steps.append(core_schema.int_schema(ge=self.ge, le=self.le))
        if source is not int:
            steps.append(handler(source))  # Literal[1]: that very value
        serialization = core_schema.simple_ser_schema("int")
        if len(steps) == 1:
            integer["serialization"] = serialization
            return integer
        return core_schema.chain_schema(steps, serialization=serialization)


def _json_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("json_number", "must be a number")
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            # The reference compares big ints exactly; any that overflow a float are far
            # outside every bound in the schema.
            raise PydanticCustomError("json_number", "is out of range") from None
    return value


class _UuidFormat:
    """Canonical RFC 4122 text (8-4-4-4-12 hex digits, either case), checked by
    pydantic-core's regex engine: no Python call per id. ``$`` there is the end of the
    text (Rust's regex), so this is a full match, with no trailing newline let through."""

    PATTERN: Final = (
        r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.chain_schema(
            [
                handler(source),
                core_schema.custom_error_schema(
                    core_schema.str_schema(pattern=self.PATTERN),
                    custom_error_type="uuid_format",
                    custom_error_message=(
                        "must be a UUID like 0b6c1f0e-6a47-4a8e-9d8e-1c1b7e3f9a01"
                    ),
                ),
            ]
        )


class _RefuseNull:
    """An optional property: it may be left out, but null is not a value (the schema gives
    no property a null type). Pydantic builds ``X | None`` as "null, or else X"; this keeps
    only X, so a null fails X's own check, in pydantic-core rather than in a Python call
    per property. The default (None, "not sent") is not validated, so absence still works;
    :func:`schema_problems` words the error on a null as such."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if schema["type"] != "nullable":
            raise TypeError(f"Omittable[...] wants an optional type, got {source!r}")
        inner: core_schema.CoreSchema = schema["schema"]
        return inner


# Same expression as rfc3339-validator, which the reference uses after upper-casing the text;
# its ``$`` lets one trailing newline through and we keep that to agree with it.
_RFC3339: Final = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$",
    re.ASCII,
)


def _rfc3339(value: object) -> object:
    # An aware datetime built in Python is welcome; AwareDatetime refuses naive ones.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("date_time_type", "must be a string")
    text = value.upper()
    match = _RFC3339.match(text)
    if match is None or int(match[1]) == 0:
        raise PydanticCustomError(
            "date_time_format",
            "must be an RFC 3339 date-time with an offset, like 2026-11-20T21:04:05Z",
        )
    try:
        # fromisoformat (3.11) takes Z and any number of fraction digits (keeps microseconds).
        return datetime.fromisoformat(text.rstrip("\n"))
    except ValueError:
        # The expression lets through day numbers the month does not have (Feb 30).
        raise PydanticCustomError(
            "date_time_format", "must be a real calendar date and time"
        ) from None


_IMDB: Final = "^tt[0-9]+$"


def _imdb_id(value: str) -> str:
    # re.search with the schema's pattern as written, exactly as the reference does.
    if re.search(_IMDB, value) is None:
        raise PydanticCustomError("imdb_format", "must be an IMDb id like tt0133093")
    return value


_T = TypeVar("_T")
Omittable = Annotated[_T | None, _RefuseNull()]
"""A property that may be left out (then None) but is never null."""

JsonInt = Annotated[int, _JsonInteger()]
JsonNumber = Annotated[float, BeforeValidator(_json_number), Strict(), AllowInfNan(False)]
Text = Annotated[str, Strict()]
UuidText = Annotated[str, Strict(), _UuidFormat()]
DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
Title = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=1024)]
LongText = Annotated[str, Strict(), StringConstraints(max_length=1024)]
PositiveId = Annotated[int, _JsonInteger(ge=1)]
Count = Annotated[int, _JsonInteger(ge=0)]
Year = Annotated[int, _JsonInteger(ge=1800, le=2200)]


class _EventPart(BaseModel):
    """Shared configuration of the event's objects."""

    # Unknown properties are allowed and ignored (forward compatibility, schema description).
    # Optional properties are Omittable: absent is None, an explicit null fails.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ExternalIds(_EventPart):
    """Identifiers of the item at other databases; all optional."""

    imdb: Omittable[Annotated[str, Strict(), AfterValidator(_imdb_id)]] = None
    tmdb: Omittable[PositiveId] = None
    tvdb: Omittable[PositiveId] = None
    trakt: Omittable[PositiveId] = None
    trakt_slug: Omittable[Text] = None
    simkl: Omittable[PositiveId] = None
    anilist: Omittable[PositiveId] = None
    mal: Omittable[PositiveId] = None
    anidb: Omittable[PositiveId] = None
    musicbrainz_recording: Omittable[UuidText] = None
    musicbrainz_release: Omittable[UuidText] = None
    musicbrainz_release_group: Omittable[UuidText] = None
    musicbrainz_artists: Omittable[Annotated[list[UuidText], Strict()]] = None
    isrc: Omittable[Text] = None


class Show(_EventPart):
    """The series of an episode or anime episode."""

    title: Title
    year: Omittable[JsonInt] = None
    external_ids: Omittable[ExternalIds] = None


class Content(_EventPart):
    """The item that was played, rated or marked."""

    # pydantic's enum check (lax): a str of the enum's values, never a number or bool.
    type: ContentType
    id: UuidText
    title: Title
    duration_ms: Omittable[PositiveId] = None
    year: Omittable[Year] = None
    show: Omittable[Show] = None
    season: Omittable[Count] = None
    number: Omittable[Count] = None
    episode_count: Omittable[PositiveId] = None
    artists: Omittable[Annotated[list[Title], Strict(), Field(min_length=1)]] = None
    album: Omittable[LongText] = None
    album_artist: Omittable[LongText] = None
    track_number: Omittable[Count] = None
    external_ids: Omittable[ExternalIds] = None


class ClientInfo(_EventPart):
    """The player that produced the event."""

    name: Omittable[Annotated[str, Strict(), StringConstraints(max_length=256)]] = None
    version: Omittable[Annotated[str, Strict(), StringConstraints(max_length=64)]] = None
    device: Omittable[Annotated[str, Strict(), StringConstraints(max_length=256)]] = None


class PlaybackEvent(_EventPart):
    """One playback event from a media server (schema v1). ``None`` means "not sent"."""

    schema_version: Annotated[Literal[1], _JsonInteger()] = 1
    event_id: UuidText
    user_id: UuidText
    session_id: Omittable[
        Annotated[str, Strict(), StringConstraints(min_length=1, max_length=128)]
    ] = None
    action: Action
    occurred_at: DateTime
    position_ms: Omittable[Count] = None
    progress_percent: Omittable[Annotated[JsonNumber, Field(ge=0, le=100)]] = None
    rating: Omittable[Annotated[JsonNumber, Field(ge=1, le=10)]] = None
    watched_at: Omittable[DateTime] = None
    content: Content
    client: Omittable[ClientInfo] = None

    def progress_percent_effective(self) -> float | None:
        """The sent ``progress_percent``, else position over duration (at most 100), else None."""
        if self.progress_percent is not None:
            return self.progress_percent
        if self.position_ms is None or self.content.duration_ms is None:
            return None
        # Players report positions past the end (credits, rounding); 100 is "all of it".
        return min(self.position_ms / self.content.duration_ms * 100, 100.0)

    def to_json_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values; parsing it again gives an equal event.

        Properties that were not sent stay out (the schema has no nulls). Integers sent as
        ``5.0`` come back as ``5`` and fractions beyond microseconds are dropped; neither
        changes what the event means.
        """
        return self.model_dump(mode="json", exclude_none=True)


def semantic_problems(event: PlaybackEvent) -> list[str]:
    """Rules the schema states only in descriptions, as ``path: message``; empty when none.

    They are kept out of validation so the model agrees with the schema; ingest decides what a
    violation costs.
    """
    problems: list[str] = []
    if event.action in _PLAY_ACTIONS_NEEDING_POSITION and event.position_ms is None:
        problems.append(f"position_ms: required for action {event.action.value}")
    if event.action is Action.RATE and event.rating is None:
        problems.append("rating: required for action rate")
    return problems


def usability_problems(event: PlaybackEvent) -> list[str]:
    """Everything that makes a schema-valid event unusable, as ``path: message``: the rules
    of :func:`semantic_problems`; a position or length beyond :data:`MAX_MILLISECONDS`,
    which the schema bounds only below but no Postgres ``bigint`` (nor a JSON reader
    that uses doubles) holds; and a video pause, stop or progress whose share watched
    cannot be told (no ``progress_percent`` and no ``duration_ms`` to divide by)."""
    problems = semantic_problems(event)
    for path, value in (
        ("position_ms", event.position_ms),
        ("content.duration_ms", event.content.duration_ms),
    ):
        if value is not None and value > MAX_MILLISECONDS:
            problems.append(f"{path}: must be at most {MAX_MILLISECONDS}")
    if (
        event.action in (Action.PAUSE, Action.STOP, Action.PROGRESS)
        and event.content.type != ContentType.TRACK
        and event.progress_percent_effective() is None
    ):
        problems.append(
            "content.duration_ms or progress_percent: needed to judge how much was watched"
        )
    return problems


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    return value


def parse_usable_event(raw: bytes) -> PlaybackEvent:
    """The one validator of playback events, for ingest's Kafka values and the intake's
    HTTP bodies alike: :func:`parse_playback_event`, then :func:`usability_problems`
    (raised as :class:`InvalidEvent` with reason ``semantics``).

    JSON may carry U+0000 in a string; no tracker and no Postgres text column takes it, and
    it never means anything in a title, so it is dropped rather than the whole event.
    """
    event = parse_playback_event(raw)
    if b"\\u0000" in raw:
        event = PlaybackEvent.model_validate(_without_nul(event.to_json_dict()))
    problems = usability_problems(event)
    if problems:
        raise InvalidEvent("semantics", problems)
    return event


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # 1e999 reads as infinity, which no writer downstream (orjson, Postgres jsonb) takes.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is beyond a double")
    return value


# One decoder for every event: json.loads with options builds a new one on each call.
_JSON: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_playback_event(raw: bytes) -> PlaybackEvent:
    """Turn a Kafka value into an event, or raise :class:`InvalidEvent` saying why not.

    Two readings of the one model, one verdict. Nearly every value is a plain event, which
    the quick reading (orjson through ``json_limits.load_json``, then the model) takes; a
    value it does not take outright goes to the exact reading (the standard library's
    parser, then the model), which decides and words the problems. The quick one never
    takes what the exact one refuses: orjson refuses all the exact reading calls "not JSON"
    (and lone surrogates besides), depth and shape are checked alike, and the one thing
    orjson reads differently, an integer beyond 64 bits (it gives a float), is sent on to
    the exact reading wherever the model would keep its value (an integer property).
    """
    event = _read_quickly(raw)
    return event if event is not None else _read_exactly(raw)


def _read_quickly(raw: bytes) -> PlaybackEvent | None:
    """The event, or None when the exact reading must decide."""
    if len(raw) > MAX_EVENT_BYTES:
        return None
    try:
        document = load_json(raw)
    except UnreadableJson:
        return None
    if not isinstance(document, dict):
        return None
    try:
        return PlaybackEvent.model_validate(document, context=_QUICK_READING)
    except ValidationError:
        return None


def _read_exactly(raw: bytes) -> PlaybackEvent:
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent("too_large", [f"value is {len(raw)} bytes, at most {MAX_EVENT_BYTES}"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent(
            "not_utf8", [f"not UTF-8: {error.reason} at byte {error.start}"]
        ) from None
    try:
        document = _JSON.decode(text)
    except json.JSONDecodeError as error:
        raise InvalidEvent(
            "not_json", [f"not JSON: {error.msg} at {error.lineno}:{error.colno}"]
        ) from None
    except (ValueError, RecursionError) as error:
        # ValueError: NaN/Infinity, or an integer longer than Python's digit limit;
        # RecursionError: arrays or objects nested deeper than the parser's stack.
        raise InvalidEvent(
            "not_json", [f"not JSON: {str(error)[:200] or 'nested too deeply'}"]
        ) from None
    if nesting_exceeds(document):
        # Deep nesting is refused by every reader of ours (json_limits), never passed on.
        raise InvalidEvent("not_json", [f"not JSON we take: {too_deep_message()}"])
    if not isinstance(document, dict):
        raise InvalidEvent("not_object", [f"not a JSON object but {_json_type(document)}"])
    try:
        return PlaybackEvent.model_validate(document)
    except ValidationError as error:
        raise InvalidEvent("schema", schema_problems(error)) from None


def schema_problems(error: ValidationError) -> list[str]:
    """Pydantic's errors about an event as ``path.to.field: message`` in the schema's terms."""
    return [_describe(detail) for detail in error.errors()]


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


# Pydantic's own error types, reworded in the schema's terms.
_MESSAGES: Final[dict[str, str]] = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_unicode": "must be valid Unicode text (no lone surrogates)",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "list_type": "must be an array",
    "too_short": "must have at least {min_length} item",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "finite_number": "must be a finite number",
    "literal_error": "must be {expected}",
    "timezone_aware": "must have a UTC offset",
}


_NULL_MESSAGE: Final = "must not be null (leave the property out)"


def _describe(detail: ErrorDetails) -> str:
    path = _path(detail["loc"])
    template = _MESSAGES.get(detail["type"])
    context = detail.get("ctx", {})
    loc = detail["loc"]
    if detail.get("input", ...) is None and loc and isinstance(loc[-1], str):
        # A property sent as null (Omittable): whatever check refused it, null is why.
        message = _NULL_MESSAGE
    elif detail["type"] == "enum":
        # pydantic lists them as "'a', 'b' or 'c'"; the schema's words are plainer.
        allowed = ", ".join(re.findall(r"'([^']*)'", str(context.get("expected", ""))))
        message = f"must be one of {allowed}"
    elif detail["type"] == "string_too_short" and context.get("min_length") == 1:
        message = "must not be empty"
    elif template is None:
        message = detail["msg"]
    else:
        message = template.format(**context)
    return f"{path}: {message}"


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "(event)"
