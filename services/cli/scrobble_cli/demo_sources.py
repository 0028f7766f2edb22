"""The quick start's media-server sources: one personal source of each kind for the demo
user, whose webhook URLs ``scrobble up`` prints, and the demo's events sent through one.

A secret is shown only once (only its hash is stored), so the URLs are kept in the state
directory (``webhooks.txt``, readable by its owner only) to be printed again by the next
``up``; a source the database no longer has (a new database) is made again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import httpx

from scrobble_shared.db.connect import connect
from scrobble_shared.db.sources import ANY_OWNER, create_source, get_source
from scrobble_shared.sources import SOURCE_KINDS, webhook_url


class DemoSourceError(Exception):
    """The demo's events were not taken by the intake; the message says what it answered."""


SETUP: Final[dict[str, str]] = {
    "jellyfin": "Dashboard > Plugins > Webhook > Add Generic Destination: this URL, "
    "Playback Start/Progress/Stop and User Data Saved, Send All Properties",
    "plex": "plex.tv account (Plex Pass) > Settings > Webhooks > Add Webhook: this URL",
    "emby": "Server > Webhooks (Notifications on older servers) > Add: this URL, "
    "Playback and Mark played / Rate events",
    "events": "POST PlaybackEvent v1 JSON (an object, an array or NDJSON) to this URL",
}


def _read(path: Path) -> dict[str, tuple[UUID, str]]:
    kept: dict[str, tuple[UUID, str]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return kept
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] in SOURCE_KINDS:
            try:
                kept[parts[0]] = (UUID(parts[1]), parts[2])
            except ValueError:
                continue
    return kept


def _write(path: Path, sources: dict[str, tuple[UUID, str]]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{kind} {sid} {url}\n" for kind, (sid, url) in sources.items())


async def ensure_demo_sources(
    database_url: str, owner: UUID, public_url: str, path: Path
) -> dict[str, str]:
    """kind -> webhook URL of the demo user's personal sources, made when missing."""
    kept = _read(path)
    conn = await connect(database_url)
    try:
        for kind in SOURCE_KINDS:
            found = kept.get(kind)
            still_good = found is not None and found[1].startswith(public_url.rstrip("/") + "/")
            if found is not None and still_good and await get_source(conn, found[0], ANY_OWNER):
                continue
            source, secret = await create_source(conn, kind, f"demo {kind}", owner)
            kept[kind] = (source.id, webhook_url(public_url, source.kind, secret))
    finally:
        await conn.close()
    _write(path, kept)
    return {kind: kept[kind][1] for kind in SOURCE_KINDS}


def send_demo_events(url: str, events: Sequence[dict[str, Any]]) -> None:
    """The demo's events as NDJSON to an events source, as a media server would send them."""
    body = "".join(json.dumps(e) + "\n" for e in events).encode()
    try:
        answer = httpx.post(
            url, content=body, headers={"Content-Type": "application/x-ndjson"}, timeout=30
        )
    except httpx.HTTPError as exc:
        raise DemoSourceError(f"the intake did not answer ({type(exc).__name__})") from None
    if answer.status_code != 202 or answer.json().get("accepted") != len(events):
        raise DemoSourceError(f"the intake answered {answer.status_code}: {answer.text[:300]}")


def describe_sources(urls: dict[str, str], path: Path) -> list[str]:
    lines = [f"webhooks:   for the demo user (kept in {path}); set up each server with its URL:"]
    for kind in SOURCE_KINDS:
        lines.append(f"  {kind:<9} {urls[kind]}")
        lines.append(f"  {'':<9} {SETUP[kind]}")
    return lines


__all__ = [
    "SETUP",
    "DemoSourceError",
    "describe_sources",
    "ensure_demo_sources",
    "send_demo_events",
]
