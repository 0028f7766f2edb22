"""RFC 9457 problem details: every error the gateway answers is one of these."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

PROBLEM_JSON: Final = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> web.Response:
    """An ``application/problem+json`` response; ``extra`` members go in as they are."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return web.json_response(body, status=status, content_type=PROBLEM_JSON)
