"""The sandbox: the fakes of the registry (``registry.py``) on one aiohttp app, one port,
told apart by path prefix.

`running_sandbox()` is what tests use; `main.run()` is what the `scrobble sandbox` command
uses. Both build the app here.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiohttp import web

from scrobble_sandbox.admin import add_admin_routes
from scrobble_sandbox.anilist.fake import AniListFake
from scrobble_sandbox.anilist.schema import anilist_schema
from scrobble_sandbox.core.fake import Fake, Handler, Surface
from scrobble_sandbox.env import sandbox_env, url_host
from scrobble_sandbox.lastfm.fake import LastfmFake
from scrobble_sandbox.listenbrainz.fake import ListenBrainzFake
from scrobble_sandbox.registry import FAKES
from scrobble_sandbox.simkl.fake import SimklFake
from scrobble_sandbox.trakt.fake import TraktFake

FakeT = TypeVar("FakeT", bound=Fake)

# ListenBrainz accepts bodies up to 10,240,000 bytes; leave room to answer "too large" itself.
MAX_BODY = 16 * 1024 * 1024


class Sandbox:
    """The fakes, their shared server wiring and the environment that points at them."""

    def __init__(self) -> None:
        self.fakes: dict[str, Fake] = {fake.name: fake() for fake in FAKES}
        self.base_url = ""
        self._surfaces: list[Surface] = sorted(
            (
                Surface(f, name, prefix, f.bases()[name])
                for f in self.fakes.values()
                for name, prefix in f.surfaces().items()
            ),
            key=lambda s: len(s.prefix),
            reverse=True,
        )

    # --- server wiring ---------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._middleware])
        for fake in self.fakes.values():
            fake.add_routes(app.router)
        add_admin_routes(app.router, self)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        surface = self.surface_for(request.path)
        if surface is None:
            return await handler(request)
        return await surface.fake.handle(request, surface, handler)

    def surface_for(self, path: str) -> Surface | None:
        for surface in self._surfaces:
            if path == surface.prefix or path.startswith(surface.prefix + "/"):
                return surface
        return None

    def bind(self, base_url: str) -> None:
        """Record where the server listens, so fakes can build absolute URLs."""
        self.base_url = base_url
        for fake in self.fakes.values():
            fake.base_urls = {name: base_url + prefix for name, prefix in fake.surfaces().items()}

    # --- test API --------------------------------------------------------------------------
    def fake(self, name: str, kind: type[FakeT]) -> FakeT:
        """The fake of tracker ``name``, as the class its tests know it by."""
        found = self.fakes[name]
        if not isinstance(found, kind):
            raise TypeError(f"the {name} fake is a {type(found).__name__}, not {kind.__name__}")
        return found

    # The first five trackers' fakes by name, as their tests have long used them.
    @property
    def trakt(self) -> TraktFake:
        return self.fake("trakt", TraktFake)

    @property
    def lastfm(self) -> LastfmFake:
        return self.fake("lastfm", LastfmFake)

    @property
    def listenbrainz(self) -> ListenBrainzFake:
        return self.fake("listenbrainz", ListenBrainzFake)

    @property
    def simkl(self) -> SimklFake:
        return self.fake("simkl", SimklFake)

    @property
    def anilist(self) -> AniListFake:
        return self.fake("anilist", AniListFake)

    @property
    def env(self) -> dict[str, str]:
        return sandbox_env(self.base_url)

    def reset(self) -> None:
        """Back to a fresh start: no items, default tokens and limits, no faults, no log."""
        for fake in self.fakes.values():
            fake.reset()

    @property
    def auto_approve(self) -> bool:
        return all(f.auto_approve for f in self.fakes.values())

    @auto_approve.setter
    def auto_approve(self, value: bool) -> None:
        for fake in self.fakes.values():
            fake.auto_approve = value

    def disable_rate_limits(self) -> None:
        for fake in self.fakes.values():
            fake.rate_limits.enabled = False

    def state(self) -> dict[str, Any]:
        return {name: fake.snapshot() for name, fake in self.fakes.items()}

    def close(self) -> None:
        """Release requests that hang on an injected fault."""
        for fake in self.fakes.values():
            fake.closing.set()


class SandboxServer:
    """A started sandbox: the aiohttp runner plus the Sandbox it serves."""

    def __init__(self, sandbox: Sandbox, runner: web.AppRunner) -> None:
        self.sandbox = sandbox
        self.runner = runner

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0) -> "SandboxServer":
        # Build the AniList schema now: start-up pays for it, not the first request.
        anilist_schema()
        sandbox = Sandbox()
        runner = web.AppRunner(
            sandbox.build_app(), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        bound_port = runner.addresses[0][1]
        sandbox.bind(f"http://{url_host(host)}:{bound_port}")
        return cls(sandbox, runner)

    async def stop(self) -> None:
        self.sandbox.close()
        await self.runner.cleanup()


@asynccontextmanager
async def running_sandbox(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Sandbox]:
    """Serve the sandbox for the duration of the block; port 0 picks a free port."""
    server = await SandboxServer.start(host, port)
    try:
        yield server.sandbox
    finally:
        await server.stop()
