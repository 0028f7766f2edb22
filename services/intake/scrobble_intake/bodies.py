"""Request bodies as each media server sends them, read within ``INTAKE_MAX_BODY``.

- Jellyfin: JSON with ``Content-Type: text/plain`` (the plugin's default) or
  ``application/json``.
- Plex: ``multipart/form-data`` with the JSON in the field ``payload``; the JPEG ``thumb``
  part of some events is read through and dropped, counted against the limit but never
  kept. (``application/json`` is taken too, for proxies that unwrap the form.)
- Emby: ``application/json``, or a form (``application/x-www-form-urlencoded`` or
  ``multipart/form-data``) whose field ``data`` holds the JSON.
- Events: ``application/json`` (one object or an array) or NDJSON
  (``application/x-ndjson``, ``application/jsonl``), see ``posted_events.py``.

Failure policy: every problem is a :class:`BodyError` carrying the 4xx to answer (413 over
the limit, 415 a content type the server never sends, 400 anything unreadable); nothing
here raises anything else for any input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs

from aiohttp import BodyPartReader, MultipartReader, web

from scrobble_shared.json_limits import UnreadableJson, load_json

JSON_TYPES: Final = frozenset({"application/json", "text/json"})
NDJSON_TYPES: Final = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl"}
)
FORM: Final = "application/x-www-form-urlencoded"
MULTIPART: Final = "multipart/form-data"
_CHUNK: Final = 64 * 1024  # multipart parts are read this much at a time


class BodyError(Exception):
    """The body cannot be read; ``status`` is the answer (400, 413, 415)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


_BOM: Final = b"\xef\xbb\xbf"


def parse_json(raw: bytes, what: str = "body") -> Any:
    """JSON from UTF-8 bytes, or a 400 saying what is wrong with it: the shared bounded
    reader (``scrobble_shared.json_limits``) refuses what is not JSON (NaN, infinite
    numbers, invalid UTF-8, lone surrogates) and nesting deeper than ``MAX_JSON_DEPTH``;
    integers beyond 64 bits come back as floats, which the event's own checks then refuse
    where an integer is wanted."""
    try:
        return load_json(raw[3:] if raw.startswith(_BOM) else raw)
    except UnreadableJson as exc:
        raise BodyError(400, f"{what} is {exc}") from None


def json_object(raw: bytes, what: str = "body") -> Mapping[str, Any]:
    document = parse_json(raw, what)
    if not isinstance(document, dict):
        raise BodyError(400, f"{what} must be a JSON object")
    return document


def check_length(request: web.Request, limit: int) -> None:
    """A declared length over the limit is refused before anything is read."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(413, f"body is {request.content_length} bytes, at most {limit}")


async def read_all(request: web.Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes however it is sent (chunked included):
    aiohttp stops reading at the app's ``client_max_size`` (the limit and some slack for
    the framing of forms), and what is over the limit itself is refused here."""
    check_length(request, limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyError(413, f"body is over {limit} bytes") from None
    except Exception as exc:  # a broken chunked or compressed body: the client's fault
        raise BodyError(400, f"body could not be read ({type(exc).__name__})") from None
    if len(raw) > limit:
        raise BodyError(413, f"body is {len(raw)} bytes, at most {limit}")
    return raw


async def form_field(request: web.Request, name: str, limit: int) -> bytes:
    """The value of one field of a urlencoded or multipart form."""
    if request.content_type == FORM:
        raw = await read_all(request, limit)
        try:
            fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BodyError(400, f"form body is not readable ({type(exc).__name__})") from None
        values = fields.get(name)
        if not values:
            raise BodyError(400, f"form body has no field {name!r}")
        return values[0].encode("utf-8")
    return await _multipart_field(request, name, limit)


async def _multipart_field(request: web.Request, name: str, limit: int) -> bytes:
    check_length(request, limit)
    try:
        reader = await request.multipart()
        return await _find_part(reader, name, limit)
    except BodyError:
        raise
    except Exception as exc:  # aiohttp's parser raises many kinds on a broken body
        raise BodyError(400, f"multipart body is not readable ({type(exc).__name__})") from None


async def _find_part(reader: MultipartReader, name: str, limit: int) -> bytes:
    used = 0
    wanted: bytes | None = None
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BodyError(400, "multipart body nests another multipart body")
        keep = part.name == name and wanted is None
        collected = bytearray()
        while True:
            chunk = await part.read_chunk(_CHUNK)
            if not chunk:
                break
            used += len(chunk)
            if used > limit:
                raise BodyError(413, f"body is over {limit} bytes")
            if keep:
                collected += chunk
        if keep:
            wanted = bytes(collected)
    if wanted is None:
        raise BodyError(400, f"multipart body has no field {name!r}")
    return wanted


async def jellyfin_payload(request: web.Request, limit: int) -> Mapping[str, Any]:
    if request.content_type not in {"text/plain", "application/octet-stream", *JSON_TYPES}:
        raise BodyError(415, f"Jellyfin sends text/plain or JSON, not {_named(request)}")
    return json_object(await read_all(request, limit))


async def plex_payload(request: web.Request, limit: int) -> Mapping[str, Any]:
    if request.content_type in JSON_TYPES:
        return json_object(await read_all(request, limit))
    if request.content_type != MULTIPART:
        raise BodyError(415, f"Plex sends multipart/form-data, not {_named(request)}")
    return json_object(await _multipart_field(request, "payload", limit), "the payload field")


async def emby_payload(request: web.Request, limit: int) -> Mapping[str, Any]:
    if request.content_type in JSON_TYPES:
        return json_object(await read_all(request, limit))
    if request.content_type not in (FORM, MULTIPART):
        raise BodyError(415, f"Emby sends JSON or a form, not {_named(request)}")
    return json_object(await form_field(request, "data", limit), "the data field")


def _named(request: web.Request) -> str:
    given = request.headers.get("Content-Type")
    return repr(given[:100]) if given else "no content type"
