"""The pure pacing rules: which keys a write to each service counts against, how often."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from scrobble_dispatcher.pacing import (
    SEND_MARGIN,
    PaceKey,
    app_pacing_key,
    limited_account,
    pacing_keys,
)

CONNECTION = uuid.UUID("6f1c1a8e-0000-4000-8000-000000000001")
APP = "client-id-123"
# The published interval plus the margin for calls that reach the service late.
SECOND = timedelta(seconds=1) + SEND_MARGIN


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        # One call per interval: spaced from the previous call's answer.
        ("trakt", [PaceKey(f"trakt:user:{CONNECTION}", SECOND, after_answer=True)]),
        (
            "simkl",
            [
                PaceKey(f"simkl:user:{CONNECTION}", SECOND, after_answer=True),
                PaceKey(app_pacing_key("simkl", APP), SECOND, after_answer=True),
            ],
        ),
        (
            "lastfm",
            # Five calls in any second on one shared key: five lanes, each spaced a
            # second from its previous call's answer.
            [
                PaceKey(
                    app_pacing_key("lastfm", APP),
                    timedelta(seconds=1),
                    after_answer=True,
                    lanes=5,
                )
            ],
        ),
        ("listenbrainz", [PaceKey(f"listenbrainz:user:{CONNECTION}", timedelta(0))]),
        (
            "anilist",
            [
                PaceKey(
                    f"anilist:user:{CONNECTION}",
                    timedelta(seconds=2) + SEND_MARGIN,
                    after_answer=True,
                )
            ],
        ),
    ],
)
def test_keys_and_intervals_per_service(service: str, expected: list[PaceKey]) -> None:
    assert pacing_keys(service, CONNECTION, APP) == expected


def test_user_keys_are_per_connection_and_app_keys_per_app() -> None:
    other = uuid.uuid4()
    assert pacing_keys("trakt", CONNECTION, APP) != pacing_keys("trakt", other, APP)
    assert pacing_keys("lastfm", CONNECTION, APP) == pacing_keys("lastfm", other, APP)
    assert pacing_keys("lastfm", CONNECTION, APP) != pacing_keys("lastfm", CONNECTION, "other")
    mine, theirs = pacing_keys("simkl", CONNECTION, APP), pacing_keys("simkl", other, APP)
    assert mine[0] != theirs[0]
    assert mine[1] == theirs[1]


def test_the_simkl_app_interval_is_configurable() -> None:
    keys = pacing_keys("simkl", CONNECTION, APP, simkl_app_interval=timedelta(milliseconds=250))
    assert [k.interval for k in keys] == [SECOND, timedelta(milliseconds=250) + SEND_MARGIN]


def test_app_keys_never_hold_the_app_key_itself() -> None:
    for service in ("simkl", "lastfm"):
        assert all(APP not in k.key for k in pacing_keys(service, CONNECTION, APP))


def test_app_keys_name_the_app_by_digest_or_stand_alone() -> None:
    assert app_pacing_key("lastfm", APP).startswith("lastfm:app:")
    assert [k.key for k in pacing_keys("lastfm", CONNECTION, "")] == ["lastfm:app"]
    assert pacing_keys("simkl", CONNECTION, "")[1].key == "simkl:app"
    assert pacing_keys("trakt", CONNECTION, "") == pacing_keys("trakt", CONNECTION, APP)


def test_unknown_service_and_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="myspace"):
        pacing_keys("myspace", CONNECTION, APP)
    with pytest.raises(ValueError, match="negative"):
        PaceKey("k", timedelta(seconds=-1))
    with pytest.raises(ValueError, match="name"):
        PaceKey("", SECOND)
    with pytest.raises(ValueError, match="lane"):
        PaceKey("k", SECOND, lanes=0)


def test_a_windowed_key_has_a_row_per_lane_and_a_plain_key_none() -> None:
    assert PaceKey("lastfm:app", SECOND, lanes=3).lane_keys() == [
        "lastfm:app#0",
        "lastfm:app#1",
        "lastfm:app#2",
    ]
    assert PaceKey("trakt:user:x", SECOND).lane_keys() == []


# --- what the service limits: token or account, not the connection (issue 20) --------------
TOKEN = "a-listenbrainz-token-0001"


def user_key(service: str, connection: uuid.UUID, token: str, name: str | None) -> str:
    account = limited_account(service, token, name)
    return pacing_keys(service, connection, APP, account=account)[0].key


def test_two_connections_holding_one_listenbrainz_token_share_one_key() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert user_key("listenbrainz", first, TOKEN, None) == user_key(
        "listenbrainz", second, TOKEN, "someone"
    )
    assert user_key("listenbrainz", first, TOKEN, None) != user_key(
        "listenbrainz", first, "another-token-0002", None
    )


@pytest.mark.parametrize("service", ["trakt", "simkl"])
def test_one_account_connected_twice_shares_one_key(service: str) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    # Two grants of one account: two tokens, one account name (in any case).
    assert user_key(service, first, "token-1-xxxxxx", "Alice") == user_key(
        service, second, "token-2-yyyyyy", "alice "
    )
    assert user_key(service, first, "token-1-xxxxxx", "alice") != user_key(
        service, first, "token-1-xxxxxx", "bob"
    )
    # The name unknown: the token is what is known to be one account.
    assert user_key(service, first, "token-1-xxxxxx", None) == user_key(
        service, second, "token-1-xxxxxx", ""
    )


def test_keys_and_digests_never_hold_the_token_or_the_name() -> None:
    for service in ("trakt", "simkl", "listenbrainz"):
        for name in (None, "alice"):
            keys = pacing_keys(
                service, CONNECTION, APP, account=limited_account(service, TOKEN, name)
            )
            assert all(TOKEN not in k.key and "alice" not in k.key for k in keys)
            assert str(CONNECTION) not in keys[0].key


def test_services_limited_otherwise_keep_their_keys() -> None:
    assert limited_account("lastfm", TOKEN, "alice") is None
    assert limited_account("anilist", TOKEN, "alice") is None
    assert limited_account("listenbrainz", None, None) is None
    # No account: the connection, as lookups and imports still pace.
    assert pacing_keys("trakt", CONNECTION, APP)[0].key == f"trakt:user:{CONNECTION}"
