"""The fakes the sandbox serves, one per tracker, each in its own folder like the trackers
themselves (``scrobble_shared.trackers``). Adding a tracker's fake is its folder and one
entry here."""

from __future__ import annotations

from typing import Final

from scrobble_sandbox.anilist.fake import AniListFake
from scrobble_sandbox.core.fake import Fake
from scrobble_sandbox.lastfm.fake import LastfmFake
from scrobble_sandbox.librefm.fake import LibrefmFake
from scrobble_sandbox.listenbrainz.fake import ListenBrainzFake
from scrobble_sandbox.maloja.fake import MalojaFake
from scrobble_sandbox.simkl.fake import SimklFake
from scrobble_sandbox.trakt.fake import TraktFake

FAKES: Final[tuple[type[Fake], ...]] = (
    TraktFake,
    LastfmFake,
    ListenBrainzFake,
    SimklFake,
    AniListFake,
    LibrefmFake,
    MalojaFake,
)
