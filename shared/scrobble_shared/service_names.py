"""The type of a tracker's name. Which names exist is the registry's to say
(``scrobble_shared.trackers.registry.SERVICES``); this module holds only the type, so the
core can name it without importing every tracker."""

from __future__ import annotations

from typing import TypeAlias

# A tracker's name as stored in connections.service and used in topics: "lastfm".
ServiceName: TypeAlias = str
