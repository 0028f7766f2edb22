"""What the intake's handlers find on the app: typed keys set by the app factory."""

from __future__ import annotations

from typing import Final

import asyncpg
from aiohttp import web

from scrobble_intake.directory import SourceDirectory
from scrobble_intake.publisher import Publisher
from scrobble_shared.settings import Settings

SETTINGS: Final = web.AppKey("settings", Settings)
POOL: Final = web.AppKey("pool", asyncpg.Pool)
DIRECTORY: Final = web.AppKey("directory", SourceDirectory)
PUBLISHER: Final = web.AppKey("publisher", Publisher)
