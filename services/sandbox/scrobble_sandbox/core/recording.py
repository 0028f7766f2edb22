"""What each fake received: one record per request, with secrets redacted.

Tests assert on these records, so they must show what arrived (method, path, headers, parsed
body, the answer's status) without leaking a token into a test log or an admin answer.
"""

import json
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

REDACTED = "[REDACTED]"
# Header names whose whole value is a credential.
_SECRET_HEADERS = frozenset(
    {"trakt-api-key", "simkl-api-key", "x-api-key", "cookie", "set-cookie", "proxy-authorization"}
)
# Body and query keys that carry a credential, an auth code or a signature.
_SECRET_KEYS = frozenset(
    {
        "access_token",
        "api_key",
        "api_sig",
        "client_id",
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "password",
        "refresh_token",
        "secret",
        "sk",
        "token",
    }
)
_MAX_TEXT_BODY = 64 * 1024
MAX_RECORDS = 50_000


@dataclass
class RecordedRequest:
    """One request as a fake saw it; `path` is relative to the fake's documented base URL
    (e.g. `/submit-listens` under LISTENBRAINZ_API_URL), `full_path` is the server path."""

    fake: str
    surface: str
    method: str
    path: str
    query: dict[str, Any]
    headers: dict[str, str]
    body: Any
    at: float
    full_path: str = ""
    status: int | None = None
    user: str | None = None
    fault: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def redact_headers(headers: "web.BaseRequest | dict[str, str]") -> dict[str, str]:
    """Copy headers, hiding credentials but keeping the auth scheme (tests check it)."""
    source = headers.headers if isinstance(headers, web.BaseRequest) else headers
    out: dict[str, str] = {}
    for name, value in source.items():
        lower = name.lower()
        if lower == "authorization":
            scheme, _, rest = value.partition(" ")
            out[lower] = f"{scheme} {REDACTED}" if rest else REDACTED
        elif lower in _SECRET_HEADERS:
            out[lower] = REDACTED
        else:
            out[lower] = value
    return out


def redact_value(value: Any) -> Any:
    """Walk a parsed body and hide the values of secret-looking keys."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in _SECRET_KEYS else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


def parse_body(raw: bytes, content_type: str) -> Any:
    """Parse a body for the record: JSON, form fields, or (truncated) text."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text[:_MAX_TEXT_BODY]
    if "x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    return text[:_MAX_TEXT_BODY]


class RequestLog:
    """Bounded, ordered list of recorded requests for one fake."""

    def __init__(self) -> None:
        self._records: deque[RecordedRequest] = deque(maxlen=MAX_RECORDS)

    def append(self, record: RecordedRequest) -> None:
        self._records.append(record)

    def all(self) -> list[RecordedRequest]:
        return list(self._records)

    def matching(self, path_prefix: str = "", method: str | None = None) -> list[RecordedRequest]:
        """Records whose path (relative to the base URL), or full server path, starts with
        `path_prefix`."""
        return [
            r
            for r in self._records
            if (r.path.startswith(path_prefix) or r.full_path.startswith(path_prefix))
            and (method is None or r.method.upper() == method.upper())
        ]

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)
