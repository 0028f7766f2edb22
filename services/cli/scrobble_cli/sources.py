"""``scrobble source ...``: the media servers that send webhooks to the intake, for the
operator (CONTRACTS section 8). An operator acts as an admin: any source, any owner.

A webhook URL holds the source's secret and is printed once, by ``add`` and ``rotate``:
only its hash is stored. ``--json`` prints one JSON object instead, for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from pydantic import ValidationError

from scrobble_shared.db.connect import connect
from scrobble_shared.db.sources import (
    ANY_OWNER,
    Scope,
    SourceRefused,
    create_source,
    delete_source,
    get_source,
    list_sources,
    map_server_user,
    rotate_secret,
    unmap_server_user,
    update_source,
)
from scrobble_shared.settings import Settings, load_settings, parse_duration
from scrobble_shared.sources import SOURCE_KINDS, Source, SourceFilters, webhook_url

T = TypeVar("T")


class SourceCommandError(Exception):
    """The operator asked for something that cannot be done; the message says why."""


FILTER_OPTIONS = {
    "allow_library": "allow_libraries",
    "deny_library": "deny_libraries",
    "allow_server_user": "allow_server_users",
    "deny_server_user": "deny_server_users",
    "anime_library": "anime_libraries",
}


def add_parser(sub: Any) -> None:
    """``scrobble source`` and its subcommands, on the main parser's subparsers."""
    source = sub.add_parser("source", help="media servers that send webhooks (the intake)")
    source_sub = source.add_subparsers(dest="source_command", required=True, metavar="COMMAND")

    add = source_sub.add_parser("add", help="add a source; prints its id and webhook URL")
    add.add_argument("--kind", required=True, choices=SOURCE_KINDS)
    add.add_argument("--name", required=True, help="what to call it (e.g. 'Living room Plex')")
    add.add_argument(
        "--owner", help="user id (uuid) of its owner; none: a source of the operator's"
    )
    _filter_arguments(add)
    _json_argument(add)
    add.set_defaults(handler=source_add)

    set_ = source_sub.add_parser("set", help="rename a source or change its filters")
    set_.add_argument("--source", required=True, help="source id")
    set_.add_argument("--name")
    _filter_arguments(set_)
    set_.add_argument("--clear-filters", action="store_true", help="drop every filter first")
    _json_argument(set_)
    set_.set_defaults(handler=source_set)

    map_ = source_sub.add_parser("map", help="map a server user onto one of our users")
    map_.add_argument("--source", required=True, help="source id")
    map_.add_argument("--server-user", required=True, help="the server's user id or name")
    map_.add_argument("--user", required=True, help="our user id (uuid)")
    _json_argument(map_)
    map_.set_defaults(handler=source_map)

    unmap = source_sub.add_parser("unmap", help="remove a server user's mapping")
    unmap.add_argument("--source", required=True, help="source id")
    unmap.add_argument("--server-user", required=True)
    _json_argument(unmap)
    unmap.set_defaults(handler=source_unmap)

    list_ = source_sub.add_parser("list", help="list sources (never their secrets)")
    list_.add_argument("--owner", help="only this user's sources")
    _json_argument(list_)
    list_.set_defaults(handler=source_list)

    rotate = source_sub.add_parser("rotate", help="new secret and URL; the old one is refused")
    rotate.add_argument("--source", required=True, help="source id")
    _json_argument(rotate)
    rotate.set_defaults(handler=source_rotate)

    remove = source_sub.add_parser("remove", help="delete a source and its mappings")
    remove.add_argument("--source", required=True, help="source id")
    remove.set_defaults(handler=source_remove)


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (repeat an option for several values)")
    for option in FILTER_OPTIONS:
        group.add_argument(f"--{option.replace('_', '-')}", action="append", metavar="NAME")
    group.add_argument(
        "--min-duration", help="keep out items shorter than this (e.g. 5m, 90s, 300)"
    )


def _uuid(text: str, option: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise SourceCommandError(f"{option} must be a uuid, got {text!r}") from None


def _filters(args: argparse.Namespace, base: SourceFilters) -> SourceFilters:
    values = base.model_dump()
    for option, field in FILTER_OPTIONS.items():
        given = getattr(args, option)
        if given:
            values[field] = tuple(given)
    if args.min_duration is not None:
        try:
            duration = parse_duration(args.min_duration)
        except ValueError as exc:
            raise SourceCommandError(f"--min-duration: {exc}") from None
        if not isinstance(duration, timedelta):
            raise SourceCommandError("--min-duration: expected a duration such as 5m")
        values["min_duration_s"] = int(duration.total_seconds())
    try:
        return SourceFilters.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SourceCommandError(f"bad filters: {problems}") from None


def _view(source: Source) -> dict[str, Any]:
    return {
        "id": str(source.id),
        "kind": source.kind,
        "name": source.name,
        "owner_id": None if source.owner_id is None else str(source.owner_id),
        "personal": source.personal,
        "filters": source.filters.model_dump(mode="json"),
        "mappings": [{"server_user": k, "user_id": str(v)} for k, v in source.mappings.items()],
    }


def _describe(source: Source) -> str:
    owner = "the operator" if source.owner_id is None else f"user {source.owner_id}"
    users = ", ".join(f"{k} -> {v}" for k, v in sorted(source.mappings.items())) or (
        "every play of the owner's account" if source.personal else "no server users"
    )
    filters = {k: v for k, v in source.filters.model_dump(mode="json").items() if v}
    shown = f"  filters {json.dumps(filters)}" if filters else ""
    return f'{source.id}  {source.kind:<8} "{source.name}"  owned by {owner}; maps {users}{shown}'


def _run(settings: Settings, action: Callable[[Any], Awaitable[T]]) -> T:
    async def with_connection() -> T:
        conn = await connect(settings.database_url)
        try:
            return await action(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(with_connection())
    except SourceRefused as exc:
        raise SourceCommandError(str(exc)) from None


def _print_secret(
    args: argparse.Namespace, settings: Settings, source: Source, secret: str
) -> None:
    url = webhook_url(settings.intake_public_url, source.kind, secret)
    if args.json:
        print(json.dumps({**_view(source), "webhook_url": url}))
        return
    print(f"source {source.id}")
    print(f"webhook URL: {url}")
    print("(shown once: only its hash is kept; `scrobble source rotate` makes a new one)")


def _not_found(source_id: UUID) -> SourceCommandError:
    return SourceCommandError(f"no source {source_id}")


def source_add(args: argparse.Namespace) -> int:
    settings = load_settings()
    owner = None if args.owner is None else _uuid(args.owner, "--owner")
    filters = _filters(args, SourceFilters())
    source, secret = _run(
        settings, lambda conn: create_source(conn, args.kind, args.name, owner, filters)
    )
    _print_secret(args, settings, source, secret)
    return 0


def source_set(args: argparse.Namespace) -> int:
    settings = load_settings()
    source_id = _uuid(args.source, "--source")

    async def change(conn: Any) -> Source | None:
        current = await get_source(conn, source_id, ANY_OWNER)
        if current is None:
            return None
        base = SourceFilters() if args.clear_filters else current.filters
        return await update_source(
            conn, source_id, ANY_OWNER, name=args.name, filters=_filters(args, base)
        )

    updated = _run(settings, change)
    if updated is None:
        raise _not_found(source_id)
    print(json.dumps(_view(updated)) if args.json else _describe(updated))
    return 0


def source_map(args: argparse.Namespace) -> int:
    settings = load_settings()
    source_id, user = _uuid(args.source, "--source"), _uuid(args.user, "--user")
    updated = _run(
        settings,
        lambda conn: map_server_user(conn, source_id, ANY_OWNER, args.server_user, user),
    )
    if updated is None:
        raise _not_found(source_id)
    print(json.dumps(_view(updated)) if args.json else _describe(updated))
    return 0


def source_unmap(args: argparse.Namespace) -> int:
    settings = load_settings()
    source_id = _uuid(args.source, "--source")
    updated = _run(
        settings, lambda conn: unmap_server_user(conn, source_id, ANY_OWNER, args.server_user)
    )
    if updated is None:
        raise _not_found(source_id)
    print(json.dumps(_view(updated)) if args.json else _describe(updated))
    return 0


def source_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    scope: Scope = ANY_OWNER if args.owner is None else _uuid(args.owner, "--owner")
    found = _run(settings, lambda conn: list_sources(conn, scope))
    if args.json:
        print(json.dumps({"items": [_view(s) for s in found]}))
    else:
        print("\n".join(_describe(s) for s in found) if found else "no sources")
    return 0


def source_rotate(args: argparse.Namespace) -> int:
    settings = load_settings()
    source_id = _uuid(args.source, "--source")
    rotated = _run(settings, lambda conn: rotate_secret(conn, source_id, ANY_OWNER))
    if rotated is None:
        raise _not_found(source_id)
    _print_secret(args, settings, *rotated)
    return 0


def source_remove(args: argparse.Namespace) -> int:
    settings = load_settings()
    source_id = _uuid(args.source, "--source")
    if not _run(settings, lambda conn: delete_source(conn, source_id, ANY_OWNER)):
        raise _not_found(source_id)
    print(f"removed source {source_id}; its webhook URL is refused from now on")
    return 0
