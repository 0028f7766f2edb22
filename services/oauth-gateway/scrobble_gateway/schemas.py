"""The bodies the gateway accepts, as pydantic models. Unknown fields are refused
(``extra="forbid"``): a misspelt setting silently ignored would be a setting silently lost.
Booleans and numbers are strict: ``"true"`` or ``"80"`` are not taken for ``true`` or ``80``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from scrobble_shared.events import DateTime, ExternalIds, JsonNumber, UuidText
from scrobble_shared.service_names import ServiceName

Percent = Annotated[StrictInt, Field(ge=1, le=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectionSettings(_Body):
    """``PUT /connections/{id}``: the settings a user may change; all optional."""

    enabled: StrictBool | None = None
    scrobble_threshold_percent: Percent | None = None
    sync_watch_status: StrictBool | None = None
    sync_ratings: StrictBool | None = None

    def changes(self) -> dict[str, Any]:
        # A null is "leave as it is", like a field left out.
        return self.model_dump(exclude_none=True)


ContentTypeName = Literal["movie", "episode", "track", "anime_episode"]
ActionName = Literal["start", "pause", "resume", "progress", "stop", "rate", "mark_watched"]


class ScrobbleRequest(_Body):
    """What to scrobble by hand: the original design's ScrobbleRequest, plus an optional
    ``content`` object with the item's names (the playback event's content fields), which
    Last.fm and ListenBrainz need and the video trackers fall back on without ids."""

    content_type: ContentTypeName
    content_id: UuidText
    action: ActionName
    watched_at: DateTime | None = None
    progress_percent: Annotated[JsonNumber, Field(ge=0, le=100)] | None = None
    rating: Annotated[JsonNumber, Field(ge=1, le=10)] | None = None
    external_ids: ExternalIds | None = None
    content: dict[str, Any] | None = None


class QueueBody(_Body):
    """``POST /queue``."""

    connection_id: uuid.UUID
    request: ScrobbleRequest


class ReplayBody(_Body):
    """``POST /admin/dead-letters/replay``: all dead work, one service's, or one row."""

    service: ServiceName | None = None
    id: uuid.UUID | None = None
