"""Connecting a user's account at each service: OAuth authorization code (Trakt, Simkl,
AniList), Trakt device code, Last.fm web auth, ListenBrainz user token; and revoking on
disconnect. ``routes`` is added to the app by the app factory.

- :mod:`.providers`: each service's sign-in as plain values (URLs, requests, answers).
- :mod:`.states`: the server-side state of flows in progress (``oauth_states``), and the
  limit on a user's open flows.
- :mod:`.binding`: the cookie that binds a browser flow to the browser that started it.
- :mod:`.store`: the connection a finished flow creates or reconnects.
- :mod:`.return_urls`: the allow-list of where a browser may go afterwards.
- :mod:`.pages`: what the browser sees at the end.
- :mod:`.handlers`: the routes; :mod:`.revoke`: revocation on disconnect.
"""

from __future__ import annotations

from scrobble_gateway.connect.handlers import routes

__all__ = ["routes"]
