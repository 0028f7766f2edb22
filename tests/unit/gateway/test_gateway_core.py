"""Pure parts of the gateway: cursors, bearer-token verification, hand-queued work."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.fernet import Fernet

from scrobble_gateway.auth import TokenRules, TokenVerifier, Unauthenticated
from scrobble_gateway.pagination import CURSOR_KEY_PURPOSE, BadCursor, CursorSigner, Position
from scrobble_gateway.queue import QueueRefused, manual_event, manual_work
from scrobble_gateway.schemas import ScrobbleRequest
from scrobble_shared.crypto import derive_keys
from scrobble_shared.work import ConnectionRules, WorkKind

SECRET = "unit-secret-0123456789abcdef0123456789"
USER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
NOW = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()
POSITION = Position(datetime(2026, 11, 20, 21, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())


def signer(keys: str) -> CursorSigner:
    return CursorSigner(derive_keys(keys, CURSOR_KEY_PURPOSE))


def unsigned(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_round_trips_and_damaged_ones_are_refused() -> None:
    cursors = signer(NEW_KEY)
    cursor = cursors.encode(POSITION)
    assert cursors.decode(cursor) == POSITION
    body, tag = cursor.split(".")
    forged = unsigned(json.dumps(["2999-01-01T00:00:00+00:00", str(uuid.uuid4())]).encode())
    for bad in (
        "",
        "nope",
        body,  # the position as cursors used to be, unsigned
        f"{forged}.{tag}",  # another position under this cursor's tag
        cursor[:-3],
        cursor + "A",
        # The tag's last character spelled with other spare bits: the same bytes.
        cursor[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}[cursor[-1]],
        f"{body}.{tag}.{tag}",
        f"{unsigned(b'[' * 3000)}.{tag}",  # too long to look at
        cursor.replace(".", "\u00b7"),
        "W10",
    ):
        with pytest.raises(BadCursor):
            cursors.decode(bad)


def test_a_cursor_opens_on_every_replica_and_through_a_key_rotation() -> None:
    before = signer(OLD_KEY).encode(POSITION)
    # Another process with the same setting: the same keys, nothing shared in memory.
    assert signer(OLD_KEY).decode(before) == POSITION
    # The new key first, the old one still listed: old cursors open, new ones are new.
    rotating = signer(f"{NEW_KEY},{OLD_KEY}")
    assert rotating.decode(before) == POSITION
    assert rotating.encode(POSITION) == signer(NEW_KEY).encode(POSITION)
    with pytest.raises(BadCursor):
        signer(NEW_KEY).decode(before)


def test_cursor_keys_are_not_the_fernet_key_and_differ_by_purpose() -> None:
    raw = base64.urlsafe_b64decode(NEW_KEY)
    cursor_key = derive_keys(NEW_KEY, CURSOR_KEY_PURPOSE)[0]
    assert len(cursor_key) == 32
    assert cursor_key not in (raw, raw[:16], raw[16:])
    assert derive_keys(NEW_KEY, b"another purpose")[0] != cursor_key


RULES = TokenRules(issuer="https://auth.unit", audience="scrobble-unit", leeway=timedelta(0))


def verifier() -> TokenVerifier:
    return TokenVerifier(RULES, secret=SECRET)


def token(**claims: object) -> str:
    body: dict[str, object] = {
        "sub": str(USER),
        "exp": int(time.time()) + 60,
        "iss": RULES.issuer,
        "aud": RULES.audience,
        **claims,
    }
    return jwt.encode(body, SECRET, algorithm="HS256")


async def test_the_verifier_takes_a_good_token_with_its_roles() -> None:
    caller = await verifier().verify(token(roles=["admin", "x"]))
    assert caller.user_id == USER
    assert caller.is_admin


@pytest.mark.parametrize(
    "bad",
    [
        token(exp=int(time.time()) - 1),
        token(nbf=int(time.time()) + 60),
        token(sub="42"),
        token(roles="admin"),
        jwt.encode({"sub": str(USER)}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": str(USER), "exp": int(time.time()) + 60}, "other" * 8, "HS256"),
    ],
)
async def test_the_verifier_refuses_bad_tokens(bad: str) -> None:
    with pytest.raises(Unauthenticated):
        await verifier().verify(bad)


async def test_without_a_jwks_only_hs256_is_accepted() -> None:
    _, payload, signature = token().split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').decode().rstrip("=")
    with pytest.raises(Unauthenticated, match="algorithm"):
        await verifier().verify(f"{header}.{payload}.{signature}")


def movie(**fields: object) -> ScrobbleRequest:
    base: dict[str, object] = {
        "content_type": "movie",
        "content_id": "6a1f7e44-6f0b-4b35-9d35-8f2a5b7c1d01",
        "action": "stop",
        "progress_percent": 85,
        "external_ids": {"tmdb": 949},
    }
    return ScrobbleRequest.model_validate({**base, **fields})


def test_a_stop_above_the_threshold_is_one_watched_scrobble_whose_key_is_stable() -> None:
    rules = ConnectionRules(id=uuid.uuid4(), service="trakt")
    first = manual_work(rules, manual_event(USER, rules.id, movie(), NOW))
    again = manual_work(rules, manual_event(USER, rules.id, movie(), NOW))
    assert [w.kind for w in first] == [WorkKind.SCROBBLE]
    assert first[0].dedupe_key == again[0].dedupe_key
    assert first[0].play_id is None


def test_a_stop_below_the_connections_threshold_keeps_the_position_only() -> None:
    rules = ConnectionRules(id=uuid.uuid4(), service="trakt", scrobble_threshold_percent=90)
    work = manual_work(rules, manual_event(USER, rules.id, movie(), NOW))
    assert [w.kind for w in work] == [WorkKind.PAUSE]


def test_a_rating_needs_sync_ratings() -> None:
    request = movie(action="rate", rating=9)
    off = ConnectionRules(id=uuid.uuid4(), service="trakt")
    with pytest.raises(QueueRefused, match="sync_ratings"):
        manual_work(off, manual_event(USER, off.id, request, NOW))
    on = ConnectionRules(id=uuid.uuid4(), service="trakt", sync_ratings=True)
    work = manual_work(on, manual_event(USER, on.id, request, NOW))
    assert [(w.kind, w.rating) for w in work] == [(WorkKind.RATING, 9)]
