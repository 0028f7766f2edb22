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
