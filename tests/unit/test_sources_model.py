"""Sources as plain values: secrets, server-user matching, filters and who a play is."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from pydantic import ValidationError

from scrobble_shared.sources import (
    ServerUser,
    Source,
    SourceFilters,
    new_secret,
    same_secret,
    secret_hash,
    server_user_key,
    webhook_url,
)

OWNER = uuid.uuid4()


def test_secrets_are_random_url_safe_and_192_bits() -> None:
    made = {new_secret() for _ in range(200)}
    assert len(made) == 200
    for secret in made:
        assert len(secret) == 32
        assert set(secret) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def test_only_the_sha256_is_kept_and_compared() -> None:
    secret = new_secret()
    assert secret_hash(secret) == hashlib.sha256(secret.encode()).digest()
    assert same_secret(secret_hash(secret), secret)
    assert not same_secret(secret_hash(secret), secret[:-1] + ("A" if secret[-1] != "A" else "B"))


def test_webhook_url() -> None:
    assert webhook_url("https://scrobble.example/", "plex", "s3cr3t") == (
        "https://scrobble.example/api/v1/intake/plex/s3cr3t"
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "0F8FAD5BD9CB469FA16570867728950E",
        "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        "  0f8fad5bd9cb469fa16570867728950e ",
    ],
)
def test_a_guid_matches_in_every_spelling(spelling: str) -> None:
    assert server_user_key(spelling) == "0f8fad5bd9cb469fa16570867728950e"


def test_names_match_case_folded_and_trimmed() -> None:
    assert server_user_key("  Straße ") == server_user_key("STRASSE")


@pytest.mark.parametrize(
    "values",
    [
        {"min_duration_s": "5"},
        {"min_duration_s": -1},
        {"allow_libraries": ("",)},
        {"allow_libraries": ("x" * 257,)},
        {"deny_server_users": tuple(str(i) for i in range(201))},
        {"unknown": True},
    ],
)
def test_bad_filters_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SourceFilters.model_validate(values)


def test_who_a_play_is() -> None:
    alice = uuid.uuid4()
    mapped = Source(uuid.uuid4(), "plex", "x", OWNER, mappings={"alice": alice})
    # A mapping wins, even for another account's play on the owner's server.
    assert mapped.user_for(ServerUser(name="Alice", own_account=False)) == alice
    assert mapped.user_for(ServerUser(name="bob")) is None
    personal = Source(uuid.uuid4(), "plex", "x", OWNER)
    assert personal.user_for(ServerUser(name="anyone")) == OWNER
    assert personal.user_for(ServerUser(name="anyone", own_account=False)) is None
    ours = str(uuid.uuid4())
    operator_events = Source(uuid.uuid4(), "events", "x", None)
    assert str(operator_events.user_for(ServerUser(id=ours))) == ours
    assert operator_events.user_for(ServerUser(id="not-a-uuid")) is None
    operator_jellyfin = Source(uuid.uuid4(), "jellyfin", "x", None)
    assert operator_jellyfin.user_for(ServerUser(id=ours)) is None
