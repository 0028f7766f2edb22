"""Turning the page's templates into answers: the jinja2 environment, the headers every
page carries, the static files, and error pages in sentences.

Every page and partial carries a strict Content-Security-Policy: scripts, styles, images
and fetches from this origin only, no inline script or style, forms posting only here, and
no framing. Pages are never cached (they hold a user's data and a CSRF token); static files
are addressed by their content's hash (``/static/page.js?v=<hash>``), so they are cached for
a year and a new version is a new address.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
import markupsafe
from aiohttp import web

from scrobble_gateway.errors import UNAVAILABLE
from scrobble_gateway.page import describe
from scrobble_gateway.routing import metrics_route

log = logging.getLogger(__name__)

PACKAGE_DIR: Final = Path(__file__).resolve().parent
STATIC_DIR: Final = PACKAGE_DIR / "static"
STATIC_PREFIX: Final = "/static"

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Sign-in links carry their token in the query string: never pass the URL on.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATIC_CACHE: Final = "public, max-age=31536000, immutable"
# A static file asked for without (or with an old) version is checked again each time.
STATIC_REVALIDATE: Final = "no-cache"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    charset: str | None
    version: str


@dataclass(frozen=True)
class StaticFiles:
    """The page's static files by name, read once at start (they are small)."""

    by_name: Mapping[str, StaticFile]

    def url(self, name: str) -> str:
        return f"{STATIC_PREFIX}/{name}?v={self.by_name[name].version}"


def load_static(directory: Path = STATIC_DIR) -> StaticFiles:
    found: dict[str, StaticFile] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        textual = content_type.startswith("text/") or content_type.endswith("javascript")
        version = hashlib.sha256(body).hexdigest()[:16]
        found[path.name] = StaticFile(body, content_type, "utf-8" if textual else None, version)
    return StaticFiles(found)


STATIC_FILES: Final = web.AppKey("page_static_files", StaticFiles)


def setup_templates(app: web.Application) -> None:
    files = load_static()
    app[STATIC_FILES] = files
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("scrobble_gateway.page", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = files.url
    env.globals["service_title"] = describe.service_title
    env.filters["when"] = describe.when
    env.filters["item"] = describe.item_text
    env.filters["content"] = describe.content_text
    env.filters["status_label"] = describe.status_label
    env.filters["kind_label"] = describe.kind_label


def with_page_headers(response: web.Response) -> web.Response:
    response.headers.update(PAGE_HEADERS)
    return response


# What the layout reads, for pages shown to someone not signed in.
_LAYOUT_DEFAULTS: Final[Mapping[str, Any]] = {
    "session": None,
    "csrf_token": "",
    "nav": None,
    "navigation": (),
    "flash": None,
}


def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    full = {**_LAYOUT_DEFAULTS, **context}
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    with_page_headers(response)
    return response


def see_other(location: str) -> web.Response:
    """A 303 to a path of the page (after a form, or to sign in)."""
    return with_page_headers(web.Response(status=303, headers={"Location": location}))


def message_page(
    request: web.Request, status: int, title: str, message: str, **extra: Any
) -> web.Response:
    """A page that only says something: an error, or a step done."""
    context = {"title": title, "message": message, **extra}
    return render(request, "message.html", context, status=status)


def fragment_message(status: int, message: str) -> web.Response:
    """A partial's answer when it has nothing to show but a sentence."""
    response = web.Response(
        status=status, text=f'<p class="notice">{_escape(message)}</p>', content_type="text/html"
    )
    with_page_headers(response)
    return response


def _escape(text: str) -> str:
    return str(markupsafe.escape(text))


def page_view(handler: Handler) -> Handler:
    """A page handler whose failures are pages in sentences, never a stack trace: a
    dependency that is away is a 503 page; anything else is logged (frames, not the
    message, which could quote a secret) and a 500 page with the request id to quote."""

    @wraps(handler)
    async def view(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except UNAVAILABLE as exc:
            log.warning(
                "page %s: a dependency is unavailable (%s)", request.path, type(exc).__name__
            )
            response = message_page(
                request,
                503,
                "Try again in a minute",
                "The server cannot reach its database or message broker right now. Nothing "
                "you did was lost; reload this page in a minute.",
            )
            response.headers["Retry-After"] = "30"
            return response
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error(
                "unhandled %s in page %s\n%s",
                type(exc).__name__,
                metrics_route(request),
                frames.rstrip(),
            )
            return message_page(
                request,
                500,
                "Something went wrong",
                "Something went wrong on our side and was logged. Reload the page to try "
                "again; if it keeps happening, tell your administrator when it happened.",
            )

    return view


async def serve_static(request: web.Request) -> web.Response:
    """``GET /static/{name}``: only the files loaded at start, by name (no paths)."""
    found = request.app[STATIC_FILES].by_name.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(text="no such file")
    fresh = request.query.get("v") == found.version
    etag = f'"{found.version}"'
    headers = {
        "Cache-Control": STATIC_CACHE if fresh else STATIC_REVALIDATE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=found.body, content_type=found.content_type, charset=found.charset, headers=headers
    )
