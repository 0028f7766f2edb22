"""JSON from outside, read within bounds: the one reader of request bodies of the gateway
and the intake, and the nesting bound ingest's event validator applies as well.

What is refused (:class:`UnreadableJson`, whose message is safe to show): bytes that are
not UTF-8 JSON; ``NaN``, ``Infinity`` and numbers no double holds (``1e999``), which would
come back as infinity and break whatever stores or sends them; lone surrogates; and
arrays or objects nested deeper than :data:`MAX_JSON_DEPTH` levels. Nothing any media
server, tracker or client of ours sends nests past 6 levels; deep nesting is only ever an
attack on recursive code further on (the standard library's reader and writer recurse, and
orjson writes at most 254 levels), so it is refused at the door, where it costs least.

Size is bounded by whoever reads the bytes (the gateway's ``client_max_size``, the intake's
``INTAKE_MAX_BODY``, ``MAX_EVENT_BYTES`` for events).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

MAX_JSON_DEPTH: Final = 32
# orjson's own message when input nests past its 1024 levels.
_ORJSON_TOO_DEEP: Final = "depth limit exceeded"


class UnreadableJson(ValueError):
    """Not JSON we read; the message says why (``not JSON: ...`` or ``nested deeper...``)."""


def too_deep_message(limit: int = MAX_JSON_DEPTH) -> str:
    return f"nested deeper than {limit} levels"


def nesting_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (a scalar
    is 0 levels, ``[]`` one, ``[{}]`` two). Iterative: it never recurses itself."""
    if not isinstance(value, dict | list):
        return False
    if limit < 1:
        return True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def load_json(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of ``raw``, or :class:`UnreadableJson`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg == _ORJSON_TOO_DEEP:
            raise UnreadableJson(too_deep_message(limit)) from None
        raise UnreadableJson(f"not JSON: {exc.msg} at {exc.lineno}:{exc.colno}") from None
    # No value nests deeper than it has opening brackets: most bodies skip the walk.
    if isinstance(raw, bytes):
        opening = raw.count(b"[") + raw.count(b"{")
    else:
        opening = raw.count("[") + raw.count("{")
    if opening > limit and nesting_exceeds(value, limit):
        raise UnreadableJson(too_deep_message(limit))
    return value


def json_or_none(raw: bytes) -> Any:
    """A service's answer read as JSON, or None when it is empty or no JSON we can read
    (read by :func:`load_json`: a crafted answer nested thousands deep is an answer we
    cannot use, not a crash)."""
    try:
        return load_json(raw)
    except UnreadableJson:
        return None
