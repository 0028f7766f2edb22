"""External-id resolution: turning what a playback event carries into the ids a service
needs, once per item and service, shared by every dispatcher replica.

- ``scrobble_shared.trackers.ids``: the pure shapes (plans, lookups, answers) and title
  normalisation; each tracker's pure resolver (plan, request, parse) is in its folder;
- ``cache``: the Postgres cache of answers (``id_lookups``) with its claim protocol;
- ``resolver``: :class:`~scrobble_dispatcher.resolve.resolver.IdResolver`, which walks a
  plan through the caches and the service, for the Deliverer.

Music needs none of this: Last.fm and ListenBrainz take artist and track names, so a track
without MusicBrainz ids is sent by name as it is (no lookup is invented for it).
"""

from __future__ import annotations

from collections.abc import Mapping

from scrobble_shared.trackers.anilist.ids import AniListResolver
from scrobble_shared.trackers.http import AppCredentials
from scrobble_shared.trackers.ids import ServiceResolver
from scrobble_shared.trackers.simkl.ids import SimklResolver
from scrobble_shared.trackers.trakt.ids import TraktResolver

__all__ = ["AniListResolver", "ServiceResolver", "SimklResolver", "TraktResolver", "build"]


def build(
    services: list[str],
    api_urls: Mapping[str, str],
    apps: Mapping[str, AppCredentials],
) -> dict[str, ServiceResolver]:
    """A resolver for each enabled service that has one (not the music services)."""
    found: dict[str, ServiceResolver] = {}
    if "trakt" in services:
        found["trakt"] = TraktResolver(api_urls["trakt"], apps["trakt"])
    if "simkl" in services:
        found["simkl"] = SimklResolver(api_urls["simkl"], apps["simkl"])
    if "anilist" in services:
        found["anilist"] = AniListResolver(api_urls["anilist"])
    return found
