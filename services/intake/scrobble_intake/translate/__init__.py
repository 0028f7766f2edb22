"""Webhook payloads to PlaybackEvent v1: one reader per media server (``jellyfin.py``,
``plex.py``, ``emby.py``) turns a payload into a :class:`Notification`, and ``common.py``
maps its server user, applies the source's filters and builds the event. All pure: a
payload (parsed JSON), a source and the time of arrival in, a decision out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from scrobble_intake.translate import emby, jellyfin, plex
from scrobble_intake.translate.common import (
    Decision,
    Ignored,
    Notification,
    Publish,
    Skip,
    Unusable,
    decide,
)
from scrobble_shared.sources import Source

Reader = Callable[[Mapping[str, Any]], Notification | Ignored]

READERS: Final[dict[str, Reader]] = {
    "jellyfin": jellyfin.read,
    "plex": plex.read,
    "emby": emby.read,
}


def translate(
    payload: Mapping[str, Any], source: Source, received_at: datetime
) -> Decision | Ignored:
    """What one webhook of ``source`` means; raises :class:`Unusable` (a 400) when the
    payload cannot be used."""
    read = READERS.get(source.kind)
    if read is None:
        raise ValueError(f"{source.kind} sources do not send webhooks")
    notification = read(payload)
    if isinstance(notification, Ignored):
        return notification
    return decide(notification, source, received_at)


__all__ = ["READERS", "Decision", "Ignored", "Publish", "Skip", "Unusable", "translate"]
