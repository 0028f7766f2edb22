"""What a tracker is, as the rest of the house reads it: one :class:`Tracker` value in each
tracker's folder (``<tracker>/__init__.py``), listed once by ``registry.py``. Delivery,
imports, resolution, pacing, the gateway's connect routes, the settings and the CLI read
these values and name no tracker themselves.

A tracker declares:

- its play rules (``play``: the content types it takes, how it follows a play);
- its client (requests and the outcome of answers: one error table for delivery) and
  whether a backlog goes in batches (``batch_size``);
- its history reader (imports), and an id resolver when it needs ids a play does not carry;
- its limits (``limits``: its ``write_keys``, and what its per-user limit counts:
  ``limited_account``);
- token refresh, when its tokens expire;
- how a person connects it (``connect``) and the settings it reads (``settings``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from scrobble_shared.trackers.connect import ConnectFlow
from scrobble_shared.trackers.history import HistoryReader
from scrobble_shared.trackers.http import AppCredentials, ServiceClient
from scrobble_shared.trackers.ids import ServiceResolver
from scrobble_shared.trackers.pace import PaceFor, PaceKey
from scrobble_shared.trackers.recheck import Recheck
from scrobble_shared.trackers.refresh import RefreshConfig
from scrobble_shared.work import PlayRules

Part = TypeVar("Part")


@dataclass(frozen=True)
class TrackerSettings:
    """The settings a tracker reads, by environment variable (and ``scrobble:`` YAML key,
    the same name in lower case). Each is optional at load; ``required`` are the ones
    without which the tracker is disabled at start, with one log line naming them."""

    # <PREFIX>_API_URL, <PREFIX>_AUTH_URL, <PREFIX>_ENABLED are always read.
    prefix: str
    api_url: str
    auth_url: str | None = None
    # The path of the API on the tracker's server, when it has one (ListenBrainz: ``/1``):
    # an API URL given as the server alone (``https://api.listenbrainz.org``) gets it.
    api_path: str = ""
    # The settings holding the app's id and secret at the tracker, in that order (None:
    # it has no app of ours, every user brings their own token).
    app: tuple[str, str] | None = None
    # Other variables it reads (a redirect URI, a default token), by name.
    extra: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    # The setting a user's token comes from when the tracker has no connect flow of its own
    # (a deployment-wide default token), if any.
    secret_extra: tuple[str, ...] = ()

    @classmethod
    def with_app(
        cls,
        prefix: str,
        api_url: str,
        auth_url: str,
        *,
        app: tuple[str, str] = ("CLIENT_ID", "CLIENT_SECRET"),
        extra: tuple[str, ...] = (),
    ) -> TrackerSettings:
        """The settings of a tracker our app is registered at: its id and secret
        (``<PREFIX>_CLIENT_ID`` and ``<PREFIX>_CLIENT_SECRET``, or the suffixes in ``app``)
        are required."""
        names = (f"{prefix}_{app[0]}", f"{prefix}_{app[1]}")
        return cls(prefix, api_url, auth_url, app=names, extra=extra, required=names)

    def full_api_url(self, url: str) -> str:
        """``url`` (an operator's ``<PREFIX>_API_URL``) with the API's path, once."""
        if not self.api_path:
            return url
        base = url.rstrip("/")
        return base if base.endswith(self.api_path) else base + self.api_path

    def names(self) -> tuple[str, ...]:
        """Every variable this tracker reads."""
        fixed = (f"{self.prefix}_ENABLED", f"{self.prefix}_API_URL")
        auth = (f"{self.prefix}_AUTH_URL",) if self.auth_url is not None else ()
        app = self.app or ()
        return fixed + auth + app + self.extra + self.secret_extra


@dataclass(frozen=True)
class TrackerConfig:
    """What a tracker's code needs from the settings (``Settings.tracker(name)``)."""

    name: str
    api_url: str
    auth_url: str | None = None
    app: AppCredentials = field(default_factory=lambda: AppCredentials(""))
    # The tracker's ``extra`` settings that are set, by variable name.
    extra: dict[str, str] = field(default_factory=dict)


def with_app(make: Callable[[str, AppCredentials], Part]) -> Callable[[TrackerConfig], Part]:
    """A tracker's part (client, reader...) made from its API URL and our app's credentials."""
    return lambda config: make(config.api_url, config.app)


def with_api_url(make: Callable[[str], Part]) -> Callable[[TrackerConfig], Part]:
    """A tracker's part (client, reader...) made from its API URL alone."""
    return lambda config: make(config.api_url)


class TrackerLimits(Protocol):
    """A tracker's limits (its folder's ``limits.py`` module)."""

    def write_keys(self, who: PaceFor) -> list[PaceKey]:
        """The keys a write for ``who`` counts against."""
        ...

    def limited_account(self, token: str | None, account_name: str | None) -> str | None:
        """What the tracker's per-user limit counts, from the token and the account's name
        (a digest for the key); None: the connection (or no per-user limit)."""
        ...


@dataclass(frozen=True)
class Tracker:
    """One tracker, as the house reads it (module docstring)."""

    name: str  # as stored in connections.service and used in topics: "lastfm"
    title: str  # as people write it: "Last.fm"
    keeps: str  # what it keeps, for people choosing: "films and TV episodes"
    play: PlayRules
    settings: TrackerSettings
    connect: ConnectFlow
    client: Callable[[TrackerConfig], ServiceClient]
    reader: Callable[[TrackerConfig], HistoryReader]
    limits: TrackerLimits
    resolver: Callable[[TrackerConfig], ServiceResolver] | None = None
    # Its "is it there already?" question, for trackers that keep a repeated write twice
    # (``recheck.py``); asked before work tried before goes out again.
    recheck: Callable[[TrackerConfig], Recheck] | None = None
    refresh: Callable[[TrackerConfig], RefreshConfig] | None = None
    # Scrobbles of one connection's backlog one call may carry (its client is then a
    # ``BatchingClient``); 1: one call a scrobble.
    batch_size: int = 1

    @property
    def music(self) -> bool:
        return self.play.music
