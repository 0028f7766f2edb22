"""Fake of a Maloja server (one user's own): its ListenBrainz-compatible API
(/apis/listenbrainz/1) and the scrobble list of its native API (/apis/mlj_1)."""
