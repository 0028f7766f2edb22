"""submit-listens validation, rule for rule as listenbrainz-server's api_tools does it.

Pure functions: they raise `ListenError` with the server's message, the handler turns it into
a 400 `{"code": 400, "error": message}`.
"""

import json
import uuid
from typing import Any

LISTEN_MINIMUM_TS = 1033430400
MAX_LISTEN_PAYLOAD_SIZE = 10_240_000
MAX_LISTEN_SIZE = 10_240
MAX_LISTENS_PER_REQUEST = 1000
MAX_TAGS_PER_LISTEN = 50
MAX_TAG_SIZE = 64
MAX_DURATION = 24 * 24 * 3600
MAX_DURATION_MS = MAX_DURATION * 1000
FUTURE_SLACK = 3600
LISTEN_TYPES = ("single", "playing_now", "import")
SINGLE_MBIDS = ("recording_mbid", "release_mbid", "release_group_mbid", "track_mbid")
LIST_MBIDS = ("artist_mbids", "work_mbids")


class ListenError(ValueError):
    """A submission the real server answers with 400 and this message."""


def is_valid_uuid(value: Any) -> bool:
    """As the server checks it: whatever `uuid.UUID` accepts."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def parse_submission(raw: bytes, now: float) -> tuple[str, list[dict[str, Any]]]:
    """Validate a whole submit-listens body; returns (listen_type, listens)."""
    if len(raw) > MAX_LISTEN_PAYLOAD_SIZE:
        raise ListenError(
            f"Payload too large. Payload should be less than {MAX_LISTEN_PAYLOAD_SIZE} bytes."
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ListenError(f"Cannot parse JSON document: {exc}") from exc
    if not isinstance(data, dict) or "payload" not in data or "listen_type" not in data:
        raise ListenError("Invalid JSON document submitted.")
    payload = data["payload"]
    if not isinstance(payload, list):
        raise ListenError("The payload in the JSON document should be a list of listens.")
    if len(payload) == 0:
        raise ListenError("JSON document does not contain any listens.")
    if len(raw) > len(payload) * MAX_LISTEN_SIZE:
        raise ListenError(
            "JSON document is too large. In aggregate, listens may not be larger than "
            f"{MAX_LISTEN_SIZE} characters."
        )
    listen_type = data["listen_type"]
    if listen_type not in LISTEN_TYPES:
        raise ListenError("JSON document requires a valid listen_type key.")
    if listen_type in ("single", "playing_now") and len(payload) > 1:
        raise ListenError(
            "JSON document contains more than listen for a single/playing_now. "
            "It should contain only one."
        )
    if len(payload) > MAX_LISTENS_PER_REQUEST:
        raise ListenError(
            f"Too many listens. You may not submit more than {MAX_LISTENS_PER_REQUEST} "
            "listens at once."
        )
    return listen_type, [validate_listen(listen, listen_type, now) for listen in payload]


def validate_listen(listen: Any, listen_type: str, now: float) -> dict[str, Any]:
    if not isinstance(listen, dict):
        raise ListenError("Listen is empty and cannot be validated.")
    if listen_type in ("single", "import"):
        _check_listened_at(listen, now)
    else:
        if "listened_at" in listen:
            raise ListenError(
                "JSON document must not contain listened_at while submitting playing_now."
            )
        if "track_metadata" in listen and len(listen) > 1:
            raise ListenError(
                "JSON document may only contain track_metadata as top level key when "
                "submitting playing_now."
            )
    if "track_metadata" not in listen:
        raise ListenError("JSON document must contain the key track_metadata at the top level.")
    metadata = listen["track_metadata"]
    if not isinstance(metadata, dict):
        raise ListenError("JSON document must contain track_metadata as an object.")
    for name in ("artist_name", "track_name"):
        value = metadata.get(name)
        if not value:
            raise ListenError(f"JSON document does not contain required track_metadata.{name}.")
        if not isinstance(value, str):
            raise ListenError(f"track_metadata.{name} must be a single string.")
        # The server strips the names before it keeps them: nothing but spaces is empty.
        if not value.strip():
            raise ListenError(f"field track_metadata.{name} is empty")
    if metadata.get("release_name") is not None and not isinstance(metadata["release_name"], str):
        raise ListenError("track_metadata.release_name must be a single string.")
    if "additional_info" in metadata:
        _check_additional_info(metadata["additional_info"])
    if _has_nul(listen):
        raise ListenError("JSON document contains a NUL character, which is not allowed.")
    return listen


def _check_listened_at(listen: dict[str, Any], now: float) -> None:
    if "listened_at" not in listen:
        raise ListenError("JSON document must contain the key listened_at at the top level.")
    raw = listen["listened_at"]
    try:
        if isinstance(raw, bool):
            raise TypeError
        listened_at = int(raw)
    except (TypeError, ValueError) as exc:
        raise ListenError("JSON document must contain an int value for listened_at.") from exc
    listen["listened_at"] = listened_at
    if "track_metadata" in listen and len(listen) > 2:
        raise ListenError(
            "JSON document may only contain listened_at and track_metadata top level keys"
        )
    if listened_at < LISTEN_MINIMUM_TS:
        raise ListenError(
            "Value for key listened_at is too low. listened_at timestamp should be greater "
            f"than {LISTEN_MINIMUM_TS} (2002-10-01 00:00:00 UTC)."
        )
    # The server compares with int(time.time()) + 3600: whole seconds, truncated.
    if listened_at >= int(now) + FUTURE_SLACK:
        raise ListenError("Value for key listened_at is too high.")


def _check_additional_info(info: Any) -> None:
    if not isinstance(info, dict):
        raise ListenError("track_metadata.additional_info must be an object.")
    if "tags" in info:
        tags = info["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ListenError("track_metadata.additional_info.tags must be a list of strings.")
        if len(tags) > MAX_TAGS_PER_LISTEN:
            raise ListenError(
                f"JSON document may not contain more than {MAX_TAGS_PER_LISTEN} items in "
                "track_metadata.additional_info.tags."
            )
        for tag in tags:
            if len(tag) > MAX_TAG_SIZE:
                raise ListenError(
                    "JSON document may not contain track_metadata.additional_info.tags longer "
                    f"than {MAX_TAG_SIZE} characters."
                )
    if "duration" in info and "duration_ms" in info:
        raise ListenError("JSON document should not contain both duration and duration_ms.")
    for key, maximum in (("duration", MAX_DURATION), ("duration_ms", MAX_DURATION_MS)):
        if key in info:
            _check_duration(key, info[key], maximum)
    for key in SINGLE_MBIDS:
        if key in info and not is_valid_uuid(info[key]):
            raise ListenError(f"{key} MBID format invalid.")
    for key in LIST_MBIDS:
        if key in info:
            values = info[key]
            if not isinstance(values, list) or not all(is_valid_uuid(v) for v in values):
                raise ListenError(f"{key} MBID format invalid.")


def _check_duration(key: str, raw: Any, maximum: int) -> None:
    try:
        if isinstance(raw, bool):
            raise TypeError
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise ListenError(f"Value for {key} is invalid, should be a positive integer.") from exc
    if value <= 0:
        raise ListenError(f"Value for {key} is invalid, should be a positive integer.")
    if value > maximum:
        raise ListenError(f"Value for {key} is too large, max permitted value is {maximum}")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
