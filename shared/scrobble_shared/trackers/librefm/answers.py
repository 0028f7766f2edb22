"""Where Libre.fm answers the Last.fm 2.0 protocol otherwise than Last.fm, read in GNU FM's
own code (``nixtape/2.0/index.php``, ``api/TrackXML.php``, ``api/UserXML.php``,
``scrobble-utils.php`` in foocorp/gnu-fm, which libre.fm runs):

- an ignored scrobble's codes are its own: 1 and 2 an empty artist or title, 3 a timestamp
  more than 5 minutes ahead, 4 one before 2001-12-22 (Last.fm's 3 and 4 the other way
  round), 91 a scrobble it already holds (same artist, title and time: done, not lost);
  no daily limit, no age limit;
- ``user.getRecentTracks`` answers a page without scrobbles with error 7 instead of an
  empty list (``history.py`` of the Last.fm folder ends the import on it);
- errors come with HTTP 200, as ``{"error": 6, "message": ...}`` or, for an answer its
  method built (16 when its database failed, 7 for an unknown track or a love it already
  has), ``{"error": {"code": "16", "#text": ...}}``: the protocol's error table reads both.
"""

from __future__ import annotations

from typing import Final

from scrobble_shared.trackers.lastfm.client import IgnoredCodes

ALREADY_SCROBBLED: Final = 91

IGNORED: Final = IgnoredCodes(
    {
        1: "artist empty",
        2: "track title empty",
        3: "timestamp in the future",
        4: "timestamp too old",
        ALREADY_SCROBBLED: "already scrobbled",
    },
    already_held=frozenset({ALREADY_SCROBBLED}),
)

NO_SCROBBLES: Final = 7
"""The error ``user.getRecentTracks`` answers for a page without scrobbles ("Invalid
resource specified")."""
