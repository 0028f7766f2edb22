"""The trackers by name: the type and the list every layer uses. Pure, and kept apart from
``settings.py`` so that the core (events, play rules, work messages) does not import the
configuration loader."""

from __future__ import annotations

from typing import Final, Literal

ServiceName = Literal["trakt", "lastfm", "listenbrainz", "simkl", "anilist"]
SERVICES: Final[tuple[ServiceName, ...]] = ("trakt", "lastfm", "listenbrainz", "simkl", "anilist")
