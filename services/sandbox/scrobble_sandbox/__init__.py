"""Fakes of the trackers (Trakt, Last.fm, Libre.fm, ListenBrainz, Simkl, AniList), served
from one process on loopback, for tests and the quick start.

    async with running_sandbox() as sb:
        env = sb.env                      # *_URL, app credentials, SANDBOX_TOKEN
        sb.trakt.faults.rate_limit(count=1, retry_after=3)
        ...
        assert sb.trakt.requests("/scrobble/stop")[0].status == 201
"""

from scrobble_sandbox.core.faults import FaultSpec
from scrobble_sandbox.core.ratelimit import Limit
from scrobble_sandbox.core.recording import RecordedRequest
from scrobble_sandbox.sandbox import Sandbox, SandboxServer, running_sandbox

__all__ = ["FaultSpec", "Limit", "RecordedRequest", "Sandbox", "SandboxServer", "running_sandbox"]
