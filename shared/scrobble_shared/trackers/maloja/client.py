"""Maloja's listens: the ListenBrainz protocol's client (``listenbrainz/client.py``) pointed
at the ListenBrainz-compatible API of the user's own server (``<server>/apis/listenbrainz/1``,
``Authorization: Token <API key>``), named Maloja, with the listen shaped as Maloja reads it.

What Maloja's API does with the protocol (its ``apis/listenbrainz.py``, 3.2.3, checked
against a running server; docs/EXTERNAL_APIS.md):

- ``single`` and ``import`` store each listen (``track_metadata.artist_name`` and
  ``track_name`` required, else 400); ``listened_at`` missing or not a number is *now*.
- ``artist_name`` is one string, which Maloja splits into artists at its own delimiters:
  ``;`` is one, ``,`` is not, so the artists go joined with ``"; "`` (:data:`MALOJA_SHAPE`).
- The length is read from ``additional_info.duration`` in seconds; ``duration_ms`` is
  ignored, so the length goes in seconds.
- A listen it already has (same second, same track) answers 200 ``{"status": "ok"}``:
  done. Another track in the same second answers 500 "Unspecified server error." (409 in
  Maloja's development branch), and so does a listen whose artists Maloja's rules discard
  ("Unknown Artist"): retried, then dead, with Maloja's words as the reason.
- In an ``import``, a listen it already has ends the call there: 200, and the listens
  after it are silently dropped. So Maloja takes no batches (``batch_size`` 1).
- ``playing_now`` answers 200 and keeps nothing (Maloja has no now playing), and there is
  no feedback call (it answers 200 "Invalid Method"): the tracker declares neither, so no
  call is spent on them.
- A wrong API key is 401 "Incorrect Authorization": the user must connect again.
"""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.listenbrainz.client import ListenBrainzClient, ListenShape

# Where a Maloja server has its ListenBrainz-compatible API.
LISTENBRAINZ_API: Final = "/apis/listenbrainz/1"
MALOJA_SHAPE: Final = ListenShape(artist_separator="; ", duration_in_seconds=True)


def maloja_client(api_url: str) -> ListenBrainzClient:
    """The client of the Maloja server at ``api_url`` (a connection's own server, when it
    names one, takes its place)."""
    return ListenBrainzClient(
        api_url, service="maloja", label="Maloja", api_path=LISTENBRAINZ_API, shape=MALOJA_SHAPE
    )
