"""Last.fm answers in JSON (`format=json`) or in its XML envelope, errors in the body."""

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from scrobble_sandbox.core.http import json_response

MESSAGES = {
    2: "Invalid service - This service does not exist",
    3: "Invalid Method - No method with that name in this package",
    4: "Authentication Failed - You do not have permissions to access the service",
    6: "Invalid parameters - Your request is missing a required parameter",
    8: "Operation failed - Something else went wrong",
    9: "Invalid session key - Please re-authenticate",
    10: "Invalid API key - You must be granted a valid key by last.fm",
    11: "Service Offline - This service is temporarily offline. Try again later.",
    13: "Invalid method signature supplied",
    14: "Unauthorized Token - This token has not been authorized",
    15: "This token has expired",
    16: "There was a temporary error processing your request. Please try again",
    26: "Suspended API key - Access for your account has been suspended, please contact Last.fm",
    29: "Rate limit exceeded - Your IP has made too many requests in a short period",
}
# The HTTP status that goes with each error (the body is what clients must read).
STATUSES = {
    8: 500,
    11: 503,
    16: 503,
    29: 429,
    4: 403,
    9: 403,
    10: 403,
    13: 403,
    14: 403,
    15: 403,
    26: 403,
}


class LastfmError(Exception):
    """A Last.fm error: the code goes in the body, the HTTP status is secondary."""

    def __init__(self, code: int, message: str | None = None, status: int | None = None) -> None:
        super().__init__(message or MESSAGES.get(code, "Error"))
        self.code = code
        self.message = message or MESSAGES.get(code, "Error")
        self.status = status or STATUSES.get(code, 400)


def _element(name: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(_element(name, v) for v in value)
    if isinstance(value, dict):
        attrs = dict(value.get("@attr", {}))
        children = {k: v for k, v in value.items() if k not in ("@attr", "#text")}
        if "#text" in value:
            # Last.fm writes `<artist mbid="...">Name</artist>`: beside text, scalars are
            # attributes.
            attrs.update({k: v for k, v in children.items() if not isinstance(v, dict | list)})
            children = {k: v for k, v in children.items() if isinstance(v, dict | list)}
        attr_text = "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items())
        inner = escape(str(value["#text"])) if "#text" in value else ""
        inner += "".join(_element(k, v) for k, v in children.items())
        return f"<{name}{attr_text}>{inner}</{name}>"
    text = "" if value is None else escape(str(value))
    return f"<{name}>{text}</{name}>"


def _xml(body: str, status: int) -> web.Response:
    return web.Response(
        text=f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n',
        status=status,
        content_type="text/xml",
        charset="utf-8",
    )


def ok(data: dict[str, Any], fmt: str) -> web.Response:
    if fmt == "json":
        return json_response(data)
    inner = "".join(_element(k, v) for k, v in data.items())
    return _xml(f'<lfm status="ok">{inner}</lfm>', 200)


def failure(err: LastfmError, fmt: str, status: int | None = None) -> web.Response:
    code = status or err.status
    if fmt == "json":
        return json_response({"error": err.code, "message": err.message}, status=code)
    body = f'<lfm status="failed"><error code="{err.code}">{escape(err.message)}</error></lfm>'
    return _xml(body, code)
