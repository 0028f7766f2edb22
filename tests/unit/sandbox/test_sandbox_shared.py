"""The pieces the fakes share (core/oauth, core/device, core/scrobbling, core/ledger), tested
on their own: code redemption rules, device poll pacing, watched_at parsing, list bodies."""

import pytest

from scrobble_sandbox.core import pkce
from scrobble_sandbox.core.clock import now
from scrobble_sandbox.core.device import DeviceGrant, user_code
from scrobble_sandbox.core.oauth import CodeGrant
from scrobble_sandbox.core.scrobbling import objects, watched_at
from scrobble_sandbox.simkl.state import SimklState
from scrobble_sandbox.trakt.state import TraktState


def grant(**extra) -> CodeGrant:
    return CodeGrant(user="u", redirect_uri="http://app/cb", expires_at=now() + 60, **extra)


def test_code_redeems_with_the_same_redirect_only():
    assert grant().redeemable("http://app/cb", None)
    assert not grant().redeemable("http://app/other", None)
    assert not grant().redeemable(None, None)


def test_used_or_expired_code_does_not_redeem():
    used = grant(used=True)
    expired = CodeGrant(user="u", redirect_uri="http://app/cb", expires_at=now() - 1)
    assert not used.redeemable("http://app/cb", None)
    assert not expired.redeemable("http://app/cb", None)


@pytest.mark.parametrize("method", ["S256", "plain", None])
def test_code_with_a_challenge_needs_its_verifier(method):
    verifier = "v" * 43
    challenge = pkce.s256(verifier) if method == "S256" else verifier
    pkce_grant = grant(challenge=challenge, challenge_method=method)
    assert pkce_grant.redeemable("http://app/cb", verifier)
    assert not pkce_grant.redeemable("http://app/cb", "w" * 43)
    assert not pkce_grant.redeemable("http://app/cb", None)


@pytest.mark.parametrize(
    ("policy", "method", "kept"),
    [
        (pkce.TRAKT, "S256", ("c", "S256")),
        (pkce.TRAKT, None, ("c", "plain")),  # RFC 7636 4.3
        (pkce.SIMKL, None, ("c", "S256")),  # Simkl's documented default
        (pkce.SIMKL, "plain", ("c", "plain")),
        (pkce.SIMKL, "s256", None),  # another spelling is silently ignored
    ],
)
def test_pkce_policies_read_the_authorize_parameters(policy, method, kept):
    assert policy.read("c", method) == kept
    assert policy.read(None, method) is None


def test_trakt_refuses_an_unknown_challenge_method():
    with pytest.raises(pkce.UnsupportedMethod):
        pkce.TRAKT.read("c", "s256")


def test_a_verifier_that_is_not_ascii_does_not_match():
    assert not pkce.verify(pkce.s256("v" * 43), "S256", "vé" * 22)


def test_device_poll_pacing_and_approval():
    device = DeviceGrant(device_code="d", user_code="ABC", expires_at=now() + 60, interval=5)
    assert device.poll(100.0) is False
    assert device.poll(104.0) is True
    assert device.poll(109.5) is False
    device.approve("alice")
    assert (device.status, device.user) == ("approved", "alice")


def test_user_codes_are_uppercase_letters_and_digits():
    code = user_code(8)
    assert len(code) == 8
    assert code.isalnum()
    assert code.upper() == code


def test_watched_at_released_only_where_asked():
    body = {"watched_at": "released"}
    assert watched_at(body, 7.0, released=True) == 7.0
    with pytest.raises(ValueError, match="isoformat"):
        watched_at(body, 7.0)
    assert watched_at({}, 7.0) == 7.0
    assert watched_at({"watched_at": "1970-01-01T00:00:10Z"}, 7.0) == 10.0
    with pytest.raises(ValueError, match="ISO 8601"):
        watched_at({"watched_at": 12}, 7.0)


def test_objects_reads_a_list_of_objects():
    assert objects({}, "movies") == []
    assert objects({"movies": [{"a": 1}]}, "movies") == [{"a": 1}]
    with pytest.raises(ValueError, match="movies must be a list of objects"):
        objects({"movies": [1]}, "movies")


@pytest.mark.parametrize("state_type", [TraktState, SimklState])
def test_ledger_seeds_unknown_ids_and_reports_playback(state_type):
    state = state_type()
    assert state.add_unknown_ids([{"imdb": "tt0000001"}, {"tmdb": 5}]) == 2
    assert {"imdb:tt0000001", "tmdb:5"} <= state.unknown_ids
    state.playback[("u", "k")] = 42.0
    assert state.snapshot()["playback"] == [{"user": "u", "item": "k", "progress": 42.0}]
