"""Connecting a user's account at each service: OAuth authorization code (Trakt, Simkl,
AniList), Trakt device code, Last.fm web auth, ListenBrainz user token; and revoking on
disconnect. ``routes`` is added to the app by the app factory."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
