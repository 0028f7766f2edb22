"""What the API answers: rows shaped as the OpenAPI document says, JSON with ISO 8601
timestamps and UUIDs as text. Nothing here ever reads a token column."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web

from scrobble_gateway.keys import CURSORS
from scrobble_gateway.pagination import Position


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


dumps = partial(json.dumps, default=_default, separators=(",", ":"))


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=dumps)


def page(
    request: web.Request, items: list[dict[str, Any]], next_position: Position | None
) -> dict[str, Any]:
    cursor = None if next_position is None else request.app[CURSORS].encode(next_position)
    return {"items": items, "next_cursor": cursor}


def connection_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "service": row["service"],
        "enabled": row["enabled"],
        "scrobble_threshold_percent": row["scrobble_threshold_percent"],
        "sync_watch_status": row["sync_watch_status"],
        "sync_ratings": row["sync_ratings"],
        "last_sync_at": row["last_sync_at"],
        "last_sync_status": row["last_sync_status"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "external_user_name": row["external_user_name"],
    }


def history_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "connection_id": row["connection_id"],
        "service": row["service"],
        "kind": row["kind"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "last_http_status": row["last_http_status"],
        "occurred_at": row["occurred_at"],
        "created_at": row["created_at"],
        "sent_at": row["sent_at"],
        "next_attempt_at": row["next_attempt_at"],
        "request": row["request"],
    }


def imported_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "connection_id": row["connection_id"],
        "service": row["service"],
        "kind": row["kind"],
        "content_type": row["content_type"],
        "item_key": row["item_key"],
        "title": row["title"],
        "external_ids": row["external_ids"],
        "occurred_at": row["occurred_at"],
        "rating": row["rating"],
        "progress": row["progress"],
        "imported_at": row["imported_at"],
    }


def dead_letter_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "connection_id": row["connection_id"],
        "user_id": row["user_id"],
        "service": row["service"],
        "kind": row["kind"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "last_http_status": row["last_http_status"],
        "occurred_at": row["occurred_at"],
        "created_at": row["created_at"],
        "dead_at": row["updated_at"],
        "request": row["request"],
    }
