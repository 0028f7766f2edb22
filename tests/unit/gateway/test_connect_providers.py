"""The connect flows' pure parts: URLs, PKCE, token requests and answers, the Last.fm
signature, device-poll statuses, the return-URL allow-list, and reprs that hide secrets."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from scrobble_gateway.connect import providers
from scrobble_gateway.connect.return_urls import is_allowed, parse_allowlist
from scrobble_gateway.connect.states import PendingConnect
from scrobble_shared.settings import Settings, SettingsError, load_settings
from scrobble_shared.trackers import connect as flows
from scrobble_shared.trackers.connect import DevicePoll, ExchangeFailed, InvalidUserToken
from scrobble_shared.trackers.registry import tracker
from scrobble_shared.trackers.trakt import connect as trakt_connect

NOW = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
ENV = {
    "GATEWAY_PUBLIC_URL": "https://scrobble.example/",
    "TRAKT_CLIENT_ID": "trakt-id",
    "TRAKT_CLIENT_SECRET": "trakt-secret",
    "SIMKL_CLIENT_ID": "simkl-id",
    "SIMKL_CLIENT_SECRET": "simkl-secret",
    "ANILIST_CLIENT_ID": "4242",
    "ANILIST_CLIENT_SECRET": "anilist-secret",
    "LASTFM_API_KEY": "lfm-key",
    "LASTFM_API_SECRET": "lfm-secret",
    "LIBREFM_API_KEY": "libre-key",
    "LIBREFM_API_SECRET": "libre-secret",
}


def _trakt_device() -> flows.DeviceFlow:
    found = trakt_connect.FLOW.device
    assert found is not None
    return found


DEVICE = _trakt_device()


def settings(**extra: str) -> Settings:
    return load_settings({**ENV, **extra})


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- authorization URLs -------------------------------------------------------------------


def test_trakt_authorization_url_carries_state_redirect_and_s256_challenge() -> None:
    app = providers.oauth_app(settings(), "trakt")
    verifier = providers.new_code_verifier()

    url = providers.authorization_url(app, "the-state", verifier)

    assert url.startswith("https://auth.trakt.tv/oauth/authorize?")
    q = query(url)
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert q == {
        "response_type": ["code"],
        "client_id": ["trakt-id"],
        "redirect_uri": ["https://scrobble.example/api/v1/scrobble/trakt/callback"],
        "state": ["the-state"],
        "code_challenge": [expected.decode()],
        "code_challenge_method": ["S256"],
    }
    assert 43 <= len(verifier) <= 128


def test_trakt_redirect_uri_setting_wins() -> None:
    app = providers.oauth_app(settings(TRAKT_REDIRECT_URI="https://other.example/cb"), "trakt")
    assert app.redirect_uri == "https://other.example/cb"


@pytest.mark.parametrize(
    ("service", "authorize", "token"),
    [
        ("simkl", "https://simkl.com/oauth/authorize", "https://api.simkl.com/oauth/token"),
        (
            "anilist",
            "https://anilist.co/api/v2/oauth/authorize",
            "https://anilist.co/api/v2/oauth/token",
        ),
        ("trakt", "https://auth.trakt.tv/oauth/authorize", "https://auth.trakt.tv/oauth/token"),
    ],
)
def test_endpoints_and_pkce_per_service(service: str, authorize: str, token: str) -> None:
    app = providers.oauth_app(settings(), service)
    pkce = service in ("trakt", "simkl")  # AniList offers no PKCE
    assert (app.authorize_url, app.token_url, app.pkce) == (authorize, token, pkce)
    url = providers.authorization_url(app, "s", None)
    assert "code_challenge" not in query(url)


def test_services_without_credentials_are_unavailable() -> None:
    bare = load_settings({})
    assert providers.service_unavailable_reason(bare, "listenbrainz") is None
    assert "not configured" in str(providers.service_unavailable_reason(bare, "trakt"))
    off = settings(SIMKL_ENABLED="false")
    assert "switched off" in str(providers.service_unavailable_reason(off, "simkl"))
    assert providers.service_unavailable_reason(settings(), "simkl") is None


# --- token requests and answers ------------------------------------------------------------


def test_code_exchange_sends_the_verifier_and_hides_secrets_in_repr() -> None:
    app = providers.oauth_app(settings(), "trakt")
    request = flows.code_exchange(app, "the-code", "the-verifier")
    assert request.url == "https://auth.trakt.tv/oauth/token"
    assert request.body == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "client_id": "trakt-id",
        "client_secret": "trakt-secret",
        "redirect_uri": "https://scrobble.example/api/v1/scrobble/trakt/callback",
        "code_verifier": "the-verifier",
    }
    for text in (repr(request), repr(app)):
        assert "trakt-secret" not in text
        assert "the-code" not in text


def test_token_answer_gives_tokens_and_expiry() -> None:
    tokens = flows.parse_token_answer(
        200, {"access_token": "A", "refresh_token": "R", "expires_in": 7776000}, NOW
    )
    assert (tokens.access_token, tokens.refresh_token) == ("A", "R")
    assert tokens.expires_at == NOW + timedelta(days=90)
    assert "A" not in repr(tokens).replace("IssuedTokens", "")


def test_token_answer_without_refresh_or_expiry() -> None:
    tokens = flows.parse_token_answer(200, {"access_token": "A", "token_type": "bearer"}, NOW)
    assert (tokens.refresh_token, tokens.expires_at) == (None, None)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "invalid_grant", "error_description": "code is bad: the-code"}),
        (200, {"token_type": "bearer"}),
        (200, ["not", "an", "object"]),
        (500, None),
    ],
)
def test_token_answer_failures_say_why_without_echoing(status: int, body: object) -> None:
    with pytest.raises(ExchangeFailed) as failed:
        flows.parse_token_answer(status, body, NOW)
    assert "the-code" not in str(failed.value)


# --- Trakt device code --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        (400, DevicePoll.PENDING),
        (404, DevicePoll.INVALID),
        (409, DevicePoll.USED),
        (410, DevicePoll.EXPIRED),
        (418, DevicePoll.DENIED),
        (429, DevicePoll.SLOW_DOWN),
    ],
)
def test_device_poll_statuses(status: int, meaning: DevicePoll) -> None:
    assert flows.classify_device_poll(DEVICE, status, {}, NOW) is meaning


def test_device_poll_success_and_unexpected() -> None:
    tokens = flows.classify_device_poll(DEVICE, 200, {"access_token": "A", "expires_in": 60}, NOW)
    assert not isinstance(tokens, DevicePoll)
    assert tokens.expires_at == NOW + timedelta(seconds=60)
    with pytest.raises(ExchangeFailed):
        flows.classify_device_poll(DEVICE, 503, None, NOW)


def test_device_requests_go_to_the_auth_host() -> None:
    app = providers.oauth_app(settings(TRAKT_AUTH_URL="http://127.0.0.1:9/trakt-auth"), "trakt")
    code = trakt_connect.device_code_request(app)
    poll = trakt_connect.device_poll_request(app, "dev-code")
    revoke = trakt_connect.revoke_request(app, "tok")
    assert code.url == "http://127.0.0.1:9/trakt-auth/oauth/device/code"
    assert code.body == {"client_id": "trakt-id"}
    assert poll.url == "http://127.0.0.1:9/trakt-auth/oauth/device/token"
    assert poll.body == {
        "code": "dev-code",
        "client_id": "trakt-id",
        "client_secret": "trakt-secret",
    }
    assert revoke.url == "http://127.0.0.1:9/trakt-auth/oauth/revoke"
    assert revoke.body["token"] == "tok"


def test_device_code_answer() -> None:
    body = {
        "device_code": "D",
        "user_code": "ABCD1234",
        "verification_url": "https://trakt.tv/activate",
        "expires_in": 600,
        "interval": 5,
    }
    device = flows.parse_device_code(200, body)
    assert (device.user_code, device.expires_in, device.interval) == ("ABCD1234", 600, 5)
    assert "'D'" not in repr(device)
    with pytest.raises(ExchangeFailed):
        flows.parse_device_code(200, {"user_code": "X"})


# --- Last.fm 2.0 protocol web auth (Last.fm, Libre.fm) ---------------------------------------

WEB_AUTH = [
    (
        "lastfm",
        "https://www.last.fm/api/auth/",
        "https://ws.audioscrobbler.com/2.0/",
        ("lfm-key", "lfm-secret"),
    ),
    (
        "librefm",
        "https://libre.fm/api/auth/",
        "https://libre.fm/2.0/",
        ("libre-key", "libre-secret"),
    ),
]


@pytest.mark.parametrize(("service", "page", "api", "app"), WEB_AUTH, ids=[w[0] for w in WEB_AUTH])
def test_web_auth_url_carries_our_state_in_cb(
    service: str, page: str, api: str, app: tuple[str, str]
) -> None:
    here = settings()
    callback = providers.callback_url(here, service)
    url = flows.web_auth_page(here.tracker(service), callback, "st")
    assert url.startswith(f"{page}?")
    q = query(url)
    assert q["api_key"] == [app[0]]
    assert q["cb"] == [f"https://scrobble.example/api/v1/scrobble/{service}/callback?state=st"]


@pytest.mark.parametrize(("service", "page", "api", "app"), WEB_AUTH, ids=[w[0] for w in WEB_AUTH])
def test_get_session_is_signed_as_documented(
    service: str, page: str, api: str, app: tuple[str, str]
) -> None:
    flow = tracker(service).connect
    assert isinstance(flow, flows.WebAuth)
    request = flows.web_auth_session_request(flow, settings().tracker(service), "TOKEN")
    expected = "api_key" + app[0] + "method" + "auth.getSession" + "token" + "TOKEN"
    signature = hashlib.md5((expected + app[1]).encode(), usedforsecurity=False)
    assert request.form == {
        "method": "auth.getSession",
        "api_key": app[0],
        "token": "TOKEN",
        "api_sig": signature.hexdigest(),
        "format": "json",
    }
    assert request.url == api
    assert "TOKEN" not in repr(request)


def test_lastfm_session_answer() -> None:
    tokens = flows.parse_web_auth_session({"session": {"name": "rj", "key": "SK", "subscriber": 0}})
    assert (tokens.access_token, tokens.user_name, tokens.refresh_token) == ("SK", "rj", None)
    with pytest.raises(ExchangeFailed, match=r"error 15"):
        flows.parse_web_auth_session({"error": 15, "message": "token expired"})
    with pytest.raises(ExchangeFailed):
        flows.parse_web_auth_session(None)


# --- a token the user pastes (ListenBrainz, Maloja) ------------------------------------------


@pytest.mark.parametrize(
    ("service", "server", "checked_at", "owner"),
    [
        (
            "listenbrainz",
            None,  # the configured API
            "https://api.listenbrainz.org/1/validate-token",
            "iliekcomputers",
        ),
        (
            "maloja",
            "http://192.168.1.20:42010/",  # the user's own server
            "http://192.168.1.20:42010/apis/listenbrainz/1/validate-token",
            "Generic Maloja User",
        ),
    ],
)
def test_pasted_token_is_checked_and_named_with_validate_token(
    service: str, server: str | None, checked_at: str, owner: str
) -> None:
    flow = tracker(service).connect
    assert isinstance(flow, flows.UserToken)
    assert flow.user_api_url is (server is not None)
    call = flow.validate(server or settings().tracker(service).api_url, "the-token")
    assert call.url == checked_at
    assert call.headers["Authorization"] == "Token the-token"
    assert "the-token" not in repr(call)
    body = {"code": 200, "message": "Token valid.", "valid": True, "user_name": owner}
    assert flow.parse(200, body) == owner
    # ListenBrainz says valid: false for a token it does not know, Maloja 401.
    for status, answer in ((200, {"valid": False}), (401, None)):
        with pytest.raises(InvalidUserToken):
            flow.parse(status, answer)
    with pytest.raises(ExchangeFailed):
        flow.parse(503, None)


# --- return URLs --------------------------------------------------------------------------

ALLOW = parse_allowlist("https://app.example, https://web.example:8443/settings/ , not a url")


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example",
        "https://app.example/anything?x=1#frag",
        "https://APP.example:443/x",
        "https://web.example:8443/settings",
        "https://web.example:8443/settings/connections",
    ],
)
def test_allowed_return_urls(url: str) -> None:
    assert is_allowed(url, ALLOW)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://app.example/",  # another scheme
        "https://app.example.evil.test/",
        "https://evil.test/?https://app.example",
        "https://app.example@evil.test/",
        "https://user@app.example/",
        "https://web.example:8443/settingsX",
        "https://web.example:8443/other",
        "https://web.example/settings/",  # another port
        "https://web.example:8443/settings/../admin",
        "https://web.example:8443/settings/%2e%2e/admin",
        "https://app.example\\@evil.test/",
        "https://app.example/\nLocation: x",
        "javascript:alert(1)",
        "//app.example/",
        "https://app.example/" + "x" * 3000,
        # Each of these made urlsplit raise: a 500 at the start of a connect flow.
        "https://[x",
        "https://[::1",
        "https://app.example\uff0fevil.test/",  # a fullwidth solidus in the host
        "https://app.example:99999/",
        "https://app.example:port/",
        # Anything but printable ASCII: a look-alike letter, a non-ASCII path.
        "https://\u0430pp.example/",
        "https://app.example/caf\u00e9",
    ],
)
def test_refused_return_urls(url: str) -> None:
    assert not is_allowed(url, ALLOW)


def test_an_allowlist_entry_no_parser_reads_is_skipped_not_fatal() -> None:
    allow = parse_allowlist("https://[x, https://app.example\uff0fx, https://app.example")
    assert [entry.origin for entry in allow] == [("https", "app.example", 443)]


def test_empty_allowlist_allows_nothing() -> None:
    assert not is_allowed("https://app.example/", parse_allowlist(""))


def test_allowlist_setting_is_checked_at_start() -> None:
    assert settings(GATEWAY_RETURN_URL_ALLOWLIST="https://a.example, https://b.example/x/")
    with pytest.raises(SettingsError, match="GATEWAY_RETURN_URL_ALLOWLIST"):
        settings(GATEWAY_RETURN_URL_ALLOWLIST="https://a.example, ftp://b.example")


def test_pending_connect_hides_the_verifier() -> None:
    import uuid

    pending = PendingConnect(uuid.uuid4(), "trakt", "the-verifier", None)
    assert "the-verifier" not in repr(pending)


# --- what a service answers, read ----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b'{"access_token": 1e999}', b"<html>", b""],
)
def test_an_answer_no_bounded_reader_takes_is_no_answer_not_a_crash(body: bytes) -> None:
    """A token endpoint (or a proxy before it) answering JSON nested thousands deep was a
    RecursionError, a 500 at the callback; now it is an answer we cannot use (502)."""
    from scrobble_shared.json_limits import json_or_none

    assert json_or_none(httpx.Response(200, content=body).content) is None
    answer = httpx.Response(200, json={"access_token": "a"})
    assert json_or_none(answer.content) == {"access_token": "a"}
