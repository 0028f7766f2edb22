"""The browser binding's pure parts (cookie name, nonce, comparison, cookie attributes), and
the provider pieces added with it: Simkl's PKCE exchange without the secret, and Trakt's
user settings call that names a device flow's account."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from aiohttp import web

from scrobble_gateway.connect import binding, providers
from scrobble_shared.trackers import connect as flows
from scrobble_shared.trackers.connect import ExchangeFailed
from scrobble_shared.trackers.trakt import connect as trakt_connect
from tests.unit.gateway.test_connect_providers import settings  # their credentials


def cookie_header(response: web.Response) -> SimpleCookie:
    """The cookies as the answer's Set-Cookie headers will carry them."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.cookies.output(header="", sep="\n"))
    return jar


def test_nonces_are_random_256_bit_and_hidden_in_repr() -> None:
    first, second = binding.new_nonce(), binding.new_nonce()
    assert first.value != second.value
    assert len(first.value) == 43
    assert first.digest == hashlib.sha256(first.value.encode()).digest()
    assert first.value not in repr(first)


def test_each_state_has_a_cookie_name_of_its_own() -> None:
    one, two = binding.cookie_name("a" * 43), binding.cookie_name("b" * 43)
    assert one != two
    assert one == binding.cookie_name("a" * 43)
    assert one.startswith("scrobble_oauth_")
    assert "a" * 8 not in one  # named after a digest, not the state itself


@pytest.mark.parametrize(
    ("presented", "fits"),
    [("the-nonce", True), ("the-nonce ", False), ("another", False), ("", False), (None, False)],
)
def test_only_the_flows_own_nonce_fits(presented: str | None, fits: bool) -> None:
    assert binding.matches(presented, binding.nonce_digest("the-nonce")) is fits


def test_a_flow_without_a_stored_nonce_fits_no_browser() -> None:
    assert not binding.matches("the-nonce", None)


@pytest.mark.parametrize(
    ("public_url", "secure"), [("https://gw.example", True), ("http://x", False)]
)
def test_the_cookie_is_http_only_lax_for_the_callback_path_only(
    public_url: str, secure: bool
) -> None:
    response = web.Response()
    nonce = binding.new_nonce()
    binding.set_cookie(
        response,
        state="s" * 43,
        nonce=nonce,
        callback_url="https://gw.example/api/v1/scrobble/trakt/callback",
        public_url=public_url,
        lifetime=timedelta(minutes=10),
    )
    [(name, cookie)] = cookie_header(response).items()
    assert name == binding.cookie_name("s" * 43)
    assert cookie.value == nonce.value
    assert cookie["path"] == "/api/v1/scrobble/trakt/callback"
    assert cookie["max-age"] == "600"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert bool(cookie["secure"]) is secure


def test_clearing_the_cookie_expires_it_at_the_same_path() -> None:
    response = web.Response()
    binding.clear_cookie(
        response, state="s" * 43, callback_url="https://gw.example/api/v1/scrobble/x/callback"
    )
    [cookie] = cookie_header(response).values()
    assert (cookie["max-age"], cookie["path"]) == ("0", "/api/v1/scrobble/x/callback")


def test_the_trakt_redirect_uri_setting_decides_the_cookie_path() -> None:
    configured = settings(TRAKT_REDIRECT_URI="https://scrobble.example/trakt-back")
    assert providers.redirect_uri(configured, "trakt") == "https://scrobble.example/trakt-back"
    assert providers.redirect_uri(configured, "simkl") == (
        "https://scrobble.example/api/v1/scrobble/simkl/callback"
    )
    assert binding.cookie_path(providers.redirect_uri(configured, "trakt")) == "/trakt-back"


# --- providers ----------------------------------------------------------------------------


def test_simkl_takes_the_verifier_instead_of_the_secret() -> None:
    app = providers.oauth_app(settings(), "simkl")
    with_verifier = flows.code_exchange(app, "the-code", "the-verifier")
    without = flows.code_exchange(app, "the-code", None)
    assert with_verifier.body["code_verifier"] == "the-verifier"
    assert "client_secret" not in with_verifier.body
    assert without.body["client_secret"] == "simkl-secret"
    assert "code_verifier" not in without.body


def test_trakt_takes_the_verifier_beside_the_secret() -> None:
    body = flows.code_exchange(providers.oauth_app(settings(), "trakt"), "c", "v").body
    assert (body["client_secret"], body["code_verifier"]) == ("trakt-secret", "v")


def test_trakt_user_settings_request_goes_to_the_api_host_with_the_token() -> None:
    here = settings(TRAKT_API_URL="http://127.0.0.1:9/trakt")
    app = providers.oauth_app(here, "trakt")
    call = trakt_connect.user_settings_request(here.tracker("trakt"), app, "the-token")
    assert call.url == "http://127.0.0.1:9/trakt/users/settings"
    assert call.headers["Authorization"] == "Bearer the-token"
    assert call.headers["trakt-api-key"] == "trakt-id"
    assert call.headers["trakt-api-version"] == "2"
    assert "the-token" not in repr(call)


def test_trakt_user_settings_answer_names_the_account() -> None:
    body = {"user": {"username": "justin", "private": False, "ids": {"slug": "justin"}}}
    assert trakt_connect.parse_user_settings(200, body) == "justin"
    for status, answer in ((200, {"user": {}}), (200, None), (401, body), (200, {"user": "x"})):
        with pytest.raises(ExchangeFailed):
            trakt_connect.parse_user_settings(status, answer)
