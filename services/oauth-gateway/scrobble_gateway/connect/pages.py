"""What a browser sees at the end of a flow: a plain page saying the account is connected,
or why it is not. Clients that do not ask for HTML get the failure as problem+json.

Pages hold fixed text and the service's name only: nothing from the query string (codes,
tokens, error descriptions from the provider) is echoed.
"""

from __future__ import annotations

import html
from typing import Final

from aiohttp import web

from scrobble_gateway.problems import problem

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}
h1{{font-size:1.5rem}}</style></head>
<body><main id="{kind}"><h1>{title}</h1><p>{message}</p></main></body></html>
"""

# The page must not be kept by caches, nor framed by another site.
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


def html_page(status: int, kind: str, title: str, message: str) -> web.Response:
    text = _PAGE.format(kind=kind, title=html.escape(title), message=html.escape(message))
    return web.Response(status=status, text=text, content_type="text/html", headers=_HEADERS)


def connected_page(service_title: str, account: str | None = None) -> web.Response:
    """The page of a finished flow; it names the account at the service when we know it."""
    which = f"{service_title} account" if account is None else f"{service_title} account {account}"
    return html_page(
        200,
        "connected",
        f"{service_title} connected",
        f"Your {which} is connected. You can close this window.",
    )


def wants_html(request: web.Request) -> bool:
    """True when the client lists text/html among what it accepts (browsers do)."""
    accept = request.headers.get("Accept", "")
    return any(part.split(";")[0].strip() == "text/html" for part in accept.split(","))


def failure(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    """A failed callback: an HTML page for a browser, problem+json for anything else."""
    if wants_html(request):
        response = html_page(status, "failed", title, detail)
    else:
        response = problem(status, title, detail)
        response.headers.update(_HEADERS)
    return response
