"""Which route a request matched, as its path template (``/api/v1/scrobble/connections/{id}``):
the metrics label, and what decides whether a route is public or for admins only."""

from __future__ import annotations

from typing import Final

from aiohttp import web

API_BASE: Final = "/api/v1/scrobble"
ADMIN_PREFIX: Final = f"{API_BASE}/admin/"
OPENAPI_PATH: Final = "/api/v1/openapi.json"
CALLBACK_TEMPLATE: Final = f"{API_BASE}/{{service}}/callback"
# No bearer token: the OAuth callbacks (bound by state instead), probes, metrics, the spec.
PUBLIC_TEMPLATES: Final = frozenset(
    {"/healthz", "/readyz", "/metrics", OPENAPI_PATH, CALLBACK_TEMPLATE}
)
UNMATCHED: Final = "unmatched"


def route_template(request: web.Request) -> str | None:
    """The matched route's canonical path; None when nothing matched (404, 405)."""
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


def metrics_route(request: web.Request) -> str:
    return route_template(request) or UNMATCHED


def is_public(request: web.Request) -> bool:
    # Unmatched paths answer 404/405 whoever asks; no route behind them to protect.
    template = route_template(request)
    return template is None or template in PUBLIC_TEMPLATES


def is_admin_route(request: web.Request) -> bool:
    template = route_template(request)
    return template is not None and template.startswith(ADMIN_PREFIX)
