"""The ``/api/v1/scrobble/sources`` routes (CONTRACTS section 8): media servers that send
webhooks to the intake, their filters and their server users' mappings.

Sources are not admin routes: every request is scoped in SQL (``scrobble_shared.db.sources``)
to the caller's own sources, or to all of them for an admin, so another user's source is a
404 exactly like a missing one. Two rules of trust are checked here, before the database:

- a non-admin owns what they create (``owner_id`` theirs or left out); a source of the
  operator's (``owner_id: null``) or of another user is an admin's to make (403);
- a non-admin maps server users only onto themselves (403 otherwise): a mapping onto
  someone else would let them put plays into that user's trackers.

The webhook secret is in the answers of create and rotate only, with the URL to give the
media server; it is stored hashed, so it cannot be shown again, and it is never logged.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Final

from aiohttp import web
from pydantic import AfterValidator, StringConstraints

from scrobble_gateway.keys import POOL, SETTINGS, Caller, caller
from scrobble_gateway.pagination import Position
from scrobble_gateway.problems import problem
from scrobble_gateway.routing import API_BASE as BASE
from scrobble_gateway.schemas import _Body
from scrobble_gateway.validation import (
    check_known_params,
    field_error,
    parse_body,
    parse_cursor,
    parse_limit,
)
from scrobble_gateway.views import json_response, page
from scrobble_shared.db import sources as db
from scrobble_shared.sources import (
    Source,
    SourceFilters,
    SourceKind,
    webhook_path,
    webhook_url,
)

log = logging.getLogger(__name__)

SOURCES: Final = f"{BASE}/sources"
# Where the secret goes in a source's webhook path; the real one is shown only once.
PATH_PLACEHOLDER: Final = "<secret>"

routes = web.RouteTableDef()


def _no_nul(text: str) -> str:
    # Postgres text and jsonb cannot hold U+0000; refused here rather than failing there.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


SourceName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
]
ServerUserText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    AfterValidator(_no_nul),
]


class SourceCreate(_Body):
    """``POST /sources``. ``owner_id`` left out is the caller; ``null`` is the operator's."""

    kind: SourceKind
    name: SourceName
    owner_id: uuid.UUID | None = None
    filters: SourceFilters | None = None

    def owner(self, who: Caller) -> uuid.UUID | None:
        return self.owner_id if "owner_id" in self.model_fields_set else who.user_id


class SourceUpdate(_Body):
    """``PUT /sources/{id}``: a new name and/or a whole new filter object; a field left
    out (or null) stays as it is."""

    name: SourceName | None = None
    filters: SourceFilters | None = None


class MappingCreate(_Body):
    """``POST /sources/{id}/mappings``: a server user (id or name) onto one of our users."""

    server_user: ServerUserText
    user_id: uuid.UUID


def source_view(source: Source) -> dict[str, Any]:
    """A source as the API shows it: never its secret, nor the secret's hash."""
    return {
        "id": source.id,
        "kind": source.kind,
        "name": source.name,
        "owner_id": source.owner_id,
        "personal": source.personal,
        "filters": source.filters.model_dump(mode="json"),
        "mappings": [
            {"server_user": key, "user_id": user} for key, user in sorted(source.mappings.items())
        ],
        "created_at": source.created_at,
        "updated_at": source.updated_at,
        "webhook_path_template": webhook_path(source.kind, PATH_PLACEHOLDER),
    }


def _with_secret(request: web.Request, source: Source, secret: str) -> dict[str, Any]:
    public_url = request.app[SETTINGS].intake_public_url
    return {
        **source_view(source),
        "secret": secret,
        "webhook_url": webhook_url(public_url, source.kind, secret),
    }


def _scope(who: Caller) -> db.Scope:
    return db.ANY_OWNER if who.is_admin else who.user_id


def _not_found() -> web.Response:
    return problem(404, "Not Found", "no such source")


def _forbidden(detail: str) -> web.Response:
    return problem(403, "Forbidden", detail)


def _path_id(request: web.Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        return None


# --- sources ----------------------------------------------------------------------------


@routes.get(SOURCES)
async def list_sources(request: web.Request) -> web.Response:
    check_known_params(request.query, {"limit", "cursor"})
    limit, after = parse_limit(request.query), parse_cursor(request)
    async with request.app[POOL].acquire() as conn:
        found = await db.list_sources(
            conn,
            _scope(caller(request)),
            limit=limit + 1,
            after=None if after is None else (after.at, after.id),
        )
    next_position = None
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        assert last.created_at is not None
        next_position = Position(last.created_at, last.id)
    return json_response(page(request, [source_view(s) for s in found], next_position))


@routes.post(SOURCES)
async def create_source(request: web.Request) -> web.Response:
    body = await parse_body(request, SourceCreate)
    who = caller(request)
    owner = body.owner(who)
    if not who.is_admin and owner is None:
        return _forbidden("only an admin may create a source without an owner")
    if not who.is_admin and owner != who.user_id:
        return _forbidden("only an admin may create a source for another user")
    async with request.app[POOL].acquire() as conn:
        source, secret = await db.create_source(conn, body.kind, body.name, owner, body.filters)
    log.info(
        "source %s (%s) created by %s for owner %s", source.id, source.kind, who.user_id, owner
    )
    answer = json_response(_with_secret(request, source, secret), status=201)
    answer.headers["Location"] = f"{SOURCES}/{source.id}"
    return answer


@routes.get(f"{SOURCES}/{{id}}")
async def get_source(request: web.Request) -> web.Response:
    check_known_params(request.query, set())
    source_id = _path_id(request)
    if source_id is None:
        return _not_found()
    async with request.app[POOL].acquire() as conn:
        found = await db.get_source(conn, source_id, _scope(caller(request)))
    return _not_found() if found is None else json_response(source_view(found))


@routes.put(f"{SOURCES}/{{id}}")
async def update_source(request: web.Request) -> web.Response:
    body = await parse_body(request, SourceUpdate)
    source_id = _path_id(request)
    if source_id is None:
        return _not_found()
    async with request.app[POOL].acquire() as conn:
        updated = await db.update_source(
            conn, source_id, _scope(caller(request)), name=body.name, filters=body.filters
        )
    return _not_found() if updated is None else json_response(source_view(updated))


@routes.delete(f"{SOURCES}/{{id}}")
async def delete_source(request: web.Request) -> web.Response:
    source_id = _path_id(request)
    if source_id is None:
        return _not_found()
    who = caller(request)
    async with request.app[POOL].acquire() as conn:
        deleted = await db.delete_source(conn, source_id, _scope(who))
    if not deleted:
        return _not_found()
    log.info("source %s deleted by %s", source_id, who.user_id)
    return web.Response(status=204)


@routes.post(f"{SOURCES}/{{id}}/rotate")
async def rotate_secret(request: web.Request) -> web.Response:
    source_id = _path_id(request)
    if source_id is None:
        return _not_found()
    who = caller(request)
    async with request.app[POOL].acquire() as conn:
        rotated = await db.rotate_secret(conn, source_id, _scope(who))
    if rotated is None:
        return _not_found()
    source, secret = rotated
    log.info("source %s: secret rotated by %s", source_id, who.user_id)
    return json_response(_with_secret(request, source, secret))


# --- mappings ---------------------------------------------------------------------------


@routes.post(f"{SOURCES}/{{id}}/mappings")
async def map_server_user(request: web.Request) -> web.Response:
    body = await parse_body(request, MappingCreate)
    source_id = _path_id(request)
    if source_id is None:
        return _not_found()
    who = caller(request)
    if not who.is_admin and body.user_id != who.user_id:
        return _forbidden(
            "only an admin may map a server user onto another user; map it onto yourself"
        )
    try:
        async with request.app[POOL].acquire() as conn:
            mapped = await db.map_server_user(
                conn, source_id, _scope(who), body.server_user, body.user_id
            )
    except db.SourceRefused as exc:
        raise field_error("server_user", str(exc).removeprefix("server_user ")) from None
    if mapped is None:
        return _not_found()
    log.info("source %s: a server user mapped onto %s by %s", source_id, body.user_id, who.user_id)
    return json_response(source_view(mapped))


@routes.delete(f"{SOURCES}/{{id}}/mappings/{{server_user}}")
async def unmap_server_user(request: web.Request) -> web.Response:
    source_id = _path_id(request)
    if source_id is None:
        return _not_found()
    server_user = request.match_info["server_user"]
    if "\x00" in server_user:
        raise field_error("server_user", "must not contain NUL characters")
    who = caller(request)
    async with request.app[POOL].acquire() as conn:
        unmapped = await db.unmap_server_user(conn, source_id, _scope(who), server_user)
    return _not_found() if unmapped is None else web.Response(status=204)


__all__ = ["MappingCreate", "SourceCreate", "SourceUpdate", "routes", "source_view"]
