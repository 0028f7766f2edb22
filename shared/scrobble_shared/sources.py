"""Sources: the media servers that send webhooks to the intake (CONTRACTS section 8). Pure.

A source is one media server (kind ``jellyfin``, ``plex``, ``emby`` or ``events``), reached
through a secret URL ``/api/v1/intake/{kind}/{secret}``, and owned by one of our users or,
when an admin made it without an owner, by the operator. Its server users map onto our
users; what a play of an unmapped server user becomes is :meth:`Source.user_for`'s rule.

Secrets are 192 random bits in URL-safe base64. Only their SHA-256 is stored: a secret
that strong needs no slow hash, and looking a source up by the hash of what was sent
reveals nothing about any stored secret through timing (the hash of a guess says nothing
about how close the guess was). The stored hash is compared once more in constant time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

SourceKind = Literal["jellyfin", "plex", "emby", "events"]
SOURCE_KINDS: Final[tuple[SourceKind, ...]] = ("jellyfin", "plex", "emby", "events")

INTAKE_BASE: Final = "/api/v1/intake"
SECRET_BYTES: Final = 24
MAX_LIST_ENTRIES: Final = 200

_GUID: Final = re.compile(
    r"\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?"
)


def new_secret() -> str:
    """A fresh webhook secret (192 bits, 32 URL-safe characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_hash(secret: str) -> bytes:
    """What is stored of a secret, and what a request's secret is looked up by."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def same_secret(stored_hash: bytes, secret: str) -> bool:
    """Whether ``secret`` is the one ``stored_hash`` was made from, in constant time."""
    return hmac.compare_digest(stored_hash, secret_hash(secret))


def webhook_path(kind: SourceKind, secret: str) -> str:
    return f"{INTAKE_BASE}/{kind}/{secret}"


def webhook_url(public_url: str, kind: SourceKind, secret: str) -> str:
    """The URL a media server is given: the intake's public URL and the source's path."""
    return public_url.rstrip("/") + webhook_path(kind, secret)


@functools.lru_cache(maxsize=65_536)
def server_user_key(text: str) -> str:
    """How a server user's id or name is matched: trimmed and case-folded; a GUID in any
    of its spellings (hyphens or not, braces, case) as 32 lower-case hex digits, because
    Jellyfin and Emby write the same user id both ways."""
    folded = text.strip().casefold()
    guid = _GUID.fullmatch(folded)
    return "".join(guid.groups()) if guid else folded


Entry = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=r"^[^\x00]*$"),
]
EntryList = Annotated[tuple[Entry, ...], Field(max_length=MAX_LIST_ENTRIES)]


@dataclass(frozen=True)
class ServerUser:
    """Who played, as the media server names them. ``own_account`` is False when the
    server says the play is not the webhook owner's (Plex sends a server owner the
    plays of everyone on the server, flagged ``user: false``)."""

    id: str | None = None
    name: str | None = None
    own_account: bool = True

    def match_keys(self) -> list[str]:
        return [server_user_key(t) for t in (self.id, self.name) if t and t.strip()]


class SourceFilters(BaseModel):
    """What a source lets through (the Jellyfin plugins' and PlexTraktSync's lists).

    Library and server-user lists compare case-folded. An allow list, when not empty,
    admits only what it names; so a play whose library the payload does not say is kept
    out by a library allow list, and let through by a deny list. A play shorter than
    ``min_duration_s`` is kept out; one of unknown length is let through.
    ``anime_libraries`` is not a filter: episodes from those libraries are anime.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_libraries: EntryList = ()
    deny_libraries: EntryList = ()
    allow_server_users: EntryList = ()
    deny_server_users: EntryList = ()
    min_duration_s: Annotated[StrictInt, Field(ge=0, le=86_400)] = 0
    anime_libraries: EntryList = ()

    def refusal(self, library: str | None, who: ServerUser, duration_ms: int | None) -> str | None:
        """Why a play is kept out, or None when it passes (the reason is a metrics label)."""
        folded = None if library is None else library.strip().casefold()
        if self.allow_libraries and folded not in _folded(self.allow_libraries):
            return "library"
        if folded is not None and folded in _folded(self.deny_libraries):
            return "library"
        keys = set(who.match_keys())
        if self.allow_server_users and not keys & _user_keys(self.allow_server_users):
            return "server_user"
        if keys & _user_keys(self.deny_server_users):
            return "server_user"
        if duration_ms is not None and duration_ms < self.min_duration_s * 1000:
            return "too_short"
        return None

    def is_anime_library(self, library: str | None) -> bool:
        return library is not None and library.strip().casefold() in _folded(self.anime_libraries)


def _folded(entries: tuple[str, ...]) -> set[str]:
    return {e.casefold() for e in entries}


def _user_keys(entries: tuple[str, ...]) -> set[str]:
    return {server_user_key(e) for e in entries}


@dataclass(frozen=True)
class Source:
    """A source as the intake uses it: who it is, what it lets through, whom it maps."""

    id: UUID
    kind: SourceKind
    name: str
    owner_id: UUID | None
    filters: SourceFilters = field(default_factory=SourceFilters)
    # server_user_key(...) -> our user id
    mappings: Mapping[str, UUID] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def personal(self) -> bool:
        """Owned and without mappings: every play of the owner's own account is theirs."""
        return self.owner_id is not None and not self.mappings

    def user_for(self, who: ServerUser) -> UUID | None:
        """Our user a play belongs to, or None (unmapped: counted, never published).

        1. A mapping of the server user's id or name.
        2. A personal source: its owner, for plays of the owner's own account.
        3. An operator's ``events`` source without mappings (the host application, whose
           user ids are ours): the event's own ``user_id``.
        """
        for key in who.match_keys():
            mapped = self.mappings.get(key)
            if mapped is not None:
                return mapped
        if self.personal:
            return self.owner_id if who.own_account else None
        if self.kind == "events" and self.owner_id is None and not self.mappings and who.id:
            try:
                return UUID(who.id)
            except ValueError:
                return None
        return None
