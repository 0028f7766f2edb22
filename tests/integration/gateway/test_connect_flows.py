"""Connecting accounts end to end: the real gateway app against the sandbox's fakes, with
httpx as the browser (the fakes approve at once, or their consent form is submitted).

Each test has its own database and gateway; the sandbox is shared by the session and reset
before each test.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from scrobble_gateway.connect.revoke import revoke_at_service
from scrobble_sandbox import Sandbox
from scrobble_sandbox.core.recording import RecordedRequest
from scrobble_sandbox.credentials import SANDBOX_TOKEN
from scrobble_sandbox.maloja.fake import MalojaFake
from scrobble_shared.trackers.registry import TRACKERS, tracker
from tests.integration.gateway.test_connect_support import (
    API,
    HTML,
    RETURN_PREFIX,
    ConnectGateway,
    auth,
    callback_url,
    decide,
    exchanges,
    follow,
    serve_gateway,
    set_cookies,
    token_owner,
)
from tests.integration.gateway.test_connections import CONNECTION_FIELDS
from tests.support.infra import Infra
from tests.support.services import free_port

pytestmark = pytest.mark.integration

OAUTH = ("trakt", "simkl", "anilist")
TITLES = {t.name: t.title for t in TRACKERS}
# The Last.fm 2.0 protocol's web auth: Last.fm and Libre.fm.
WEB_AUTH = ("lastfm", "librefm")
# The user pastes a token (and, for Maloja, gives the address of their own server).
TOKEN_SERVICES = ("listenbrainz", "maloja")


# --- each service end to end --------------------------------------------------------------


@pytest.mark.parametrize("service", OAUTH)
async def test_oauth_service_connects_end_to_end(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, service: str
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    url = await gw.authorization_url(client, user, service)

    page = await follow(client, url, headers=HTML)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f"{TITLES[service]} connected" in page.text
    [row] = await gw.connections(user)
    assert (row["service"], row["status"], row["enabled"]) == (service, "active", True)
    token = gw.access_token(row)
    assert token_owner(sb, service, token) == "sandbox"
    assert token.encode() not in bytes(row["access_token_enc"])
    listed = await client.get(f"{gw.url}{API}/connections", headers=auth(user))
    assert [c["id"] for c in listed.json()["items"]] == [str(row["id"])]
    assert token not in listed.text


# Trakt and Simkl document PKCE S256; AniList does not (EXTERNAL_APIS.md, "PKCE").
PKCE = ("trakt", "simkl")


@pytest.mark.parametrize("service", PKCE)
async def test_pkce_s256_where_the_service_takes_it(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, service: str
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    url = await gw.authorization_url(client, user, service)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [f"{gw.url}{API}/{service}/callback"]

    assert (await follow(client, url)).status_code == 200

    [exchange] = getattr(sb, service).requests("/oauth/token")
    assert exchange.status == 200
    assert exchange.body["code_verifier"] == "[REDACTED]"  # sent (the fake hides secrets)
    assert exchange.headers["content-type"] == "application/json"
    # Trakt takes the verifier beside the secret; Simkl takes one or the other, never both.
    assert ("client_secret" in exchange.body) is (service == "trakt")
    [row] = await gw.connections(user)
    assert token_owner(sb, service, gw.access_token(row)) == "sandbox"


async def test_anilist_gets_no_pkce_parameters(
    gw: ConnectGateway, client: httpx.AsyncClient
) -> None:
    url = await gw.authorization_url(client, uuid.uuid4(), "anilist")
    query = parse_qs(urlsplit(url).query)
    assert "code_challenge" not in query
    assert "code_challenge_method" not in query


async def test_trakt_keeps_the_refresh_token(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    page = await follow(client, await gw.authorization_url(client, user, "trakt"))
    assert page.status_code == 200

    [row] = await gw.connections(user)
    refresh = gw.cipher.decrypt(row["refresh_token_enc"])
    assert refresh in sb.trakt.state.refresh
    assert refresh.encode() not in bytes(row["refresh_token_enc"])
    assert row["token_expires_at"] is not None


@pytest.mark.parametrize("service", PKCE)
async def test_code_exchange_without_the_right_verifier_fails(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, service: str
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, user, service))
    other_verifier = gw.cipher.encrypt("x" * 64)
    await gw.sql("UPDATE oauth_states SET code_verifier_enc = $1", other_verifier)

    page = await client.get(back, headers=HTML)

    assert page.status_code == 502
    assert f"{TITLES[service]} not connected" in page.text
    assert getattr(sb, service).requests("/oauth/token")[-1].status in (400, 401)
    assert await gw.connections() == []


@pytest.mark.parametrize("service", WEB_AUTH)
async def test_web_auth_connects_with_a_signed_get_session(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, service: str
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    url = await gw.authorization_url(client, user, service)
    query = parse_qs(urlsplit(url).query)
    prefix = tracker(service).settings.prefix
    assert url.startswith(sb.env[f"{prefix}_AUTH_URL"] + "?")
    assert query["api_key"] == [sb.env[f"{prefix}_API_KEY"]]
    assert query["cb"][0].startswith(f"{gw.url}{API}/{service}/callback?state=")

    page = await follow(client, url, headers=HTML)

    assert page.status_code == 200
    assert f"{TITLES[service]} connected" in page.text
    [call] = exchanges(sb, service)
    assert (call.method, call.status, call.body["api_sig"]) == ("POST", 200, "[REDACTED]")
    [row] = await gw.connections(user)
    assert (row["service"], row["external_user_name"]) == (service, "sandbox")
    session_key = gw.access_token(row)
    assert token_owner(sb, service, session_key) == "sandbox"
    assert session_key.encode() not in bytes(row["access_token_enc"])
    other = next(s for s in WEB_AUTH if s != service)
    assert exchanges(sb, other) == []  # its own fake, not the other protocol tracker's


def pasted(sb: Sandbox, service: str, token: str = SANDBOX_TOKEN) -> dict[str, str]:
    """The connect body: the token, and for Maloja the user's own server (the fake)."""
    if service == "maloja":
        return {"token": token, "api_url": sb.env["MALOJA_API_URL"]}
    return {"token": token}


def token_checks(sb: Sandbox, service: str) -> list[RecordedRequest]:
    """The validate-token calls the tracker's fake received."""
    if service == "maloja":
        return sb.fake("maloja", MalojaFake).requests("/apis/listenbrainz/1/validate-token")
    return sb.listenbrainz.requests("/validate-token")


@pytest.mark.parametrize("service", TOKEN_SERVICES)
async def test_pasted_token_is_checked_then_stored(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, service: str
) -> None:
    user = uuid.uuid4()

    answer = await gw.start(client, user, service, pasted(sb, service))

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) >= CONNECTION_FIELDS  # a connection as GET /connections shows it
    assert (body["user_id"], body["service"], body["status"]) == (str(user), service, "active")
    assert SANDBOX_TOKEN not in answer.text
    [check] = token_checks(sb, service)
    assert check.headers["authorization"] == "Token [REDACTED]"
    [row] = await gw.connections(user)
    assert gw.access_token(row) == SANDBOX_TOKEN
    assert SANDBOX_TOKEN.encode() not in bytes(row["access_token_enc"])
    assert row["external_user_name"] == "sandbox"
    # The user's own server is the connection's; ListenBrainz's is the configured one.
    assert row["api_url"] == (sb.env["MALOJA_API_URL"] if service == "maloja" else None)


@pytest.mark.parametrize("service", TOKEN_SERVICES)
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"token": "5a4db0c5-0000-4000-8000-00000000dead"}, 400),
        ({"token": ""}, 422),
        ({}, 422),
        ({"token": "has spaces in it"}, 422),
    ],
)
async def test_pasted_bad_token_is_refused(
    gw: ConnectGateway,
    sb: Sandbox,
    client: httpx.AsyncClient,
    service: str,
    body: dict[str, str],
    status: int,
) -> None:
    user = uuid.uuid4()
    if service == "maloja":
        body = body | {"api_url": sb.env["MALOJA_API_URL"]}
    answer = await gw.start(client, user, service, body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if status == 400:
        assert answer.json()["title"] == f"Invalid {TITLES[service]} token"
    assert await gw.connections() == []


@pytest.mark.parametrize(
    ("service", "api_url", "why"),
    [
        ("maloja", None, "required"),
        ("maloja", "http://169.254.169.254/latest", "link-local"),
        ("maloja", "ftp://music.example", "http"),
        ("listenbrainz", "http://192.168.1.20:42010", "takes no address"),
    ],
)
async def test_own_server_address_only_where_the_tracker_asks_and_checked(
    gw: ConnectGateway,
    sb: Sandbox,
    client: httpx.AsyncClient,
    service: str,
    api_url: str | None,
    why: str,
) -> None:
    body = {"token": SANDBOX_TOKEN} | ({} if api_url is None else {"api_url": api_url})
    answer = await gw.start(client, uuid.uuid4(), service, body)
    assert answer.status_code == 422, answer.text
    assert why in answer.text
    assert token_checks(sb, service) == []  # nothing was called with the token
    assert await gw.connections() == []


@pytest.mark.parametrize(
    ("server", "why"),
    [
        ("nothing listens", "could be reached"),
        ("another web server", "answered there (validate-token answered 404"),
    ],
)
async def test_own_server_that_is_no_maloja_is_the_users_input(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, server: str, why: str
) -> None:
    """The address is what the user gave: a 422 on it, never a 5xx of ours."""
    address = f"http://127.0.0.1:{free_port()}"
    if server == "another web server":
        address = sb.env["LISTENBRAINZ_API_URL"]  # answers, but has no Maloja API
    body = {"token": SANDBOX_TOKEN, "api_url": address}
    answer = await gw.start(client, uuid.uuid4(), "maloja", body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "api_url"
    assert why in answer.json()["errors"][0]["message"]
    assert SANDBOX_TOKEN not in answer.text
    assert await gw.connections() == []


async def test_reconnecting_replaces_the_tokens_and_makes_it_active_again(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    await follow(client, await gw.authorization_url(client, user, "simkl"))
    [first] = await gw.connections(user)
    await gw.sql(
        "UPDATE connections SET status = 'needs_reconnect', status_reason = 'token revoked', "
        "last_sync_status = 'needs reconnect: token revoked'"
    )

    await follow(client, await gw.authorization_url(client, user, "simkl"))

    [again] = await gw.connections(user)
    assert again["id"] == first["id"]
    assert (again["status"], again["status_reason"]) == ("active", None)
    assert again["last_sync_status"] == "reconnected"
    assert gw.access_token(again) != gw.access_token(first)
    assert again["token_version"] == first["token_version"] + 1


# --- state: single use, expiry, binding ---------------------------------------------------


async def test_replayed_state_is_rejected_and_creates_nothing(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, user, "anilist"))
    query = parse_qs(urlsplit(back).query)
    forged = back.replace(query["code"][0], "ac_not-the-code")

    first = await client.get(forged)  # spends the state, the exchange fails
    replay = await client.get(back)  # the real code, the same state

    assert first.status_code == 502
    assert replay.status_code == 400
    assert replay.headers["content-type"].startswith("application/problem+json")
    assert replay.json()["title"] == "AniList not connected: Sign-in link already used"
    assert len(sb.anilist.requests("/token")) == 1  # the replay never reached AniList
    assert await gw.connections() == []


async def test_successful_state_cannot_be_replayed(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, user, "trakt"))
    assert (await client.get(back)).status_code == 200
    [before] = await gw.connections()

    replay = await client.get(back, headers=HTML)

    assert replay.status_code == 400
    assert "already been used" in replay.text
    [after] = await gw.connections()
    assert after["token_version"] == before["token_version"]


async def test_racing_callbacks_with_one_state_connect_once(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, user, "simkl"))

    answers = await asyncio.gather(*(client.get(back) for _ in range(4)))

    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400]
    assert len(sb.simkl.requests("/oauth/token")) == 1
    assert len(await gw.connections(user)) == 1


@pytest.mark.parametrize("service", WEB_AUTH)
async def test_web_auth_token_that_gives_no_session_creates_nothing(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, service: str
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, user, service))
    token = parse_qs(urlsplit(back).query)["token"][0]

    page = await client.get(back.replace(token, "lt-not-a-token"), headers=HTML)

    assert page.status_code == 502
    assert f"{TITLES[service]} did not complete the sign-in" in page.text
    assert await gw.connections() == []


@pytest.mark.parametrize(
    "aged",
    [
        "UPDATE oauth_states SET created_at = now() - interval '11 minutes'",
        "UPDATE oauth_states SET created_at = now() - interval '20 minutes', "
        "expires_at = now() - interval '1 second'",
    ],
)
async def test_expired_state_is_rejected(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, aged: str
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, user, "simkl"))
    await gw.sql(aged)

    page = await client.get(back, headers=HTML)

    assert page.status_code == 410
    assert "Sign-in links last 10 minutes" in page.text
    assert sb.simkl.requests("/oauth/token") == []
    assert await gw.connections() == []


async def test_state_is_bound_to_the_user_who_started(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    alice, mallory = uuid.uuid4(), uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, alice, "trakt"))

    # Mallory finishes Alice's flow with her own bearer token: it still is Alice's.
    page = await client.get(back, headers=auth(mallory))

    assert page.status_code == 200
    assert await gw.connections(mallory) == []
    [row] = await gw.connections(alice)
    assert row["service"] == "trakt"
    theirs = await client.get(f"{gw.url}{API}/connections", headers=auth(mallory))
    assert theirs.json()["items"] == []


async def test_state_of_one_service_does_not_finish_another(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back = await callback_url(client, await gw.authorization_url(client, user, "trakt"))
    elsewhere = back.replace("/trakt/callback", "/simkl/callback")

    answer = await client.get(elsewhere)

    assert answer.status_code == 400
    assert answer.json()["title"] == "Simkl not connected: Sign-in link not recognised"
    assert await gw.connections() == []


@pytest.mark.parametrize("query", ["", "?code=abc", "?state=" + "x" * 43 + "&code=abc"])
async def test_callback_without_a_known_state_fails_cleanly(
    gw: ConnectGateway, client: httpx.AsyncClient, query: str
) -> None:
    answer = await client.get(f"{gw.url}{API}/trakt/callback{query}", headers=HTML)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "Trakt not connected" in answer.text
    assert "Traceback" not in answer.text
    assert await gw.connections() == []


# --- return URLs --------------------------------------------------------------------------


async def test_allowed_return_url_is_followed(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    back_to = f"{RETURN_PREFIX}connections?tab=music"
    url = await gw.authorization_url(client, user, "lastfm", return_url=back_to)

    answer = await follow(client, url)

    assert answer.status_code == 303
    assert answer.headers["Location"] == back_to
    assert len(await gw.connections(user)) == 1


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/steal",
        "http://app.example.test/settingsX",
        "http://app.example.test/settings/../admin",
        "http://user@app.example.test/settings/",
        "javascript:alert(1)",
        "https://[x",
        "http://app.example.test\uff0fsettings/",  # a fullwidth solidus in the host
    ],
)
async def test_return_url_off_the_allowlist_is_refused_at_start(
    gw: ConnectGateway, client: httpx.AsyncClient, return_url: str
) -> None:
    answer = await gw.start(client, uuid.uuid4(), "trakt", {"return_url": return_url})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "return_url"
    assert await gw.sql("SELECT * FROM oauth_states") == []


async def test_return_url_no_longer_allowed_is_not_followed(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    url = await gw.authorization_url(client, user, "simkl", return_url=RETURN_PREFIX)
    # As if the allow-list changed (or the row was tampered with) since the flow started.
    await gw.sql("UPDATE oauth_states SET return_url = 'https://evil.example/x'")

    answer = await follow(client, url)

    assert answer.status_code == 200
    assert "Location" not in answer.headers
    assert "Simkl connected" in answer.text
    assert len(await gw.connections(user)) == 1


# --- refusals and failures ----------------------------------------------------------------


@pytest.mark.parametrize("service", OAUTH)
async def test_user_denying_access_gets_a_clear_page(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, service: str
) -> None:
    user = uuid.uuid4()
    consent = await client.get(await gw.authorization_url(client, user, service))
    denied = await decide(client, consent, "deny")
    assert denied.status_code == 302
    assert "error=access_denied" in denied.headers["Location"]

    page = await client.get(denied.headers["Location"], headers=HTML)
    replay = await client.get(denied.headers["Location"])

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert f"You declined access at {TITLES[service]}" in page.text
    assert replay.headers["content-type"].startswith("application/problem+json")
    assert replay.json()["title"] == f"{TITLES[service]} not connected"
    assert await gw.connections() == []
    [state] = await gw.sql("SELECT used_at FROM oauth_states")
    assert state["used_at"] is not None


async def test_token_endpoint_failure_creates_nothing(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    sb.trakt.faults.error(500, count=1, path_prefix="/oauth/token")
    user = uuid.uuid4()

    page = await follow(client, await gw.authorization_url(client, user, "trakt"), headers=HTML)

    assert page.status_code == 502
    assert "Trakt did not complete the sign-in" in page.text
    assert await gw.connections() == []


async def test_unknown_and_unconfigured_services(
    infra: Infra, database_url: str, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    async with serve_gateway(infra, database_url, sb, ANILIST_CLIENT_SECRET="") as gw:
        user = uuid.uuid4()
        unknown = await gw.start(client, user, "spotify")
        off = await gw.start(client, user, "anilist")
        callback = await client.get(f"{gw.url}{API}/listenbrainz/callback?state=x", headers=HTML)

    assert unknown.status_code == 404
    assert unknown.json()["title"] == "Unknown service"
    assert off.status_code == 409
    assert off.headers["content-type"].startswith("application/problem+json")
    assert off.json()["title"] == "AniList is not available"
    assert callback.status_code == 404


async def test_starting_needs_a_bearer_token(gw: ConnectGateway, client: httpx.AsyncClient) -> None:
    answer = await client.post(f"{gw.url}{API}/connect/trakt")
    assert answer.status_code == 401


async def test_no_token_code_or_secret_reaches_the_logs(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    caplog.set_level(logging.DEBUG)
    started = await gw.start(client, user, "trakt")
    [binding_cookie] = set_cookies(started).values()
    back = await callback_url(client, started.json()["authorization_url"])
    code = parse_qs(urlsplit(back).query)["code"][0]
    assert (await client.get(back)).status_code == 200
    [row] = await gw.connections(user)

    # The test's own client logs the URLs it fetches (codes included); the gateway's side
    # is everything else. (The gateway's access log is path-only: see scrobble_gateway.main.)
    logged = "\n".join(
        r.getMessage()
        for r in caplog.records
        if not (r.name.startswith(("httpx", "httpcore")) and gw.url in r.getMessage())
    )
    for secret in (
        code,
        gw.access_token(row),
        gw.cipher.decrypt(row["refresh_token_enc"]),
        sb.env["TRAKT_CLIENT_SECRET"],
    ):
        assert secret not in logged
    assert f"connected trakt for user {user}" in logged
    # The binding cookie's nonce travels only between the gateway and the browser (whose
    # transport, the test's httpcore, logs the headers it receives).
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("scrobble", "aiohttp"))
    )
    assert binding_cookie.value not in ours
    assert f"connect trakt started for user {user}" in ours


# --- Trakt device code --------------------------------------------------------------------


async def _device(gw: ConnectGateway, client: httpx.AsyncClient, user: uuid.UUID) -> Any:
    answer = await client.post(f"{gw.url}{API}/connect/trakt/device", headers=auth(user))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _poll(
    gw: ConnectGateway, client: httpx.AsyncClient, user: uuid.UUID, device_code: str
) -> httpx.Response:
    return await client.post(
        f"{gw.url}{API}/connect/trakt/device/poll",
        json={"device_code": device_code},
        headers=auth(user),
    )


async def test_device_code_pending_then_connected(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.trakt.state.device_interval = 0
    user, other = uuid.uuid4(), uuid.uuid4()
    device = await _device(gw, client, user)
    assert set(device) == {"device_code", "user_code", "verification_url", "expires_in", "interval"}
    assert device["verification_url"] == f"{sb.env['TRAKT_AUTH_URL']}/activate"

    pending = await _poll(gw, client, user, device["device_code"])
    assert (pending.status_code, pending.json()) == (202, {"state": "pending"})

    # A person types the code on the activation page and approves.
    page = await client.get(device["verification_url"])
    activated = await decide(client, page, "approve", user_code=device["user_code"].lower())
    assert activated.status_code == 200

    not_theirs = await _poll(gw, client, other, device["device_code"])
    done = await _poll(gw, client, user, device["device_code"])
    again = await _poll(gw, client, user, device["device_code"])

    assert not_theirs.status_code == 404
    assert done.status_code == 201, done.text
    connection = done.json()
    assert (connection["user_id"], connection["service"]) == (str(user), "trakt")
    assert again.status_code == 404
    [row] = await gw.connections(user)
    assert token_owner(sb, "trakt", gw.access_token(row)) == "sandbox"
    assert await gw.connections(other) == []


async def test_device_code_answer_names_the_linked_account(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.trakt.state.device_interval = 0
    user = uuid.uuid4()
    device = await _device(gw, client, user)
    page = await client.get(device["verification_url"])
    # Whoever approves at Trakt decides which Trakt account is linked: here "bob".
    activated = await decide(
        client, page, "approve", user_code=device["user_code"], sandbox_user="bob"
    )
    assert activated.status_code == 200

    done = await _poll(gw, client, user, device["device_code"])

    assert done.status_code == 201, done.text
    assert done.json()["external_user_name"] == "bob"
    [row] = await gw.connections(user)
    assert row["external_user_name"] == "bob"
    [settings] = sb.trakt.requests("/users/settings")
    assert (settings.method, settings.status) == ("GET", 200)
    assert settings.headers["trakt-api-version"] == "2"
    assert settings.headers["authorization"] == "Bearer [REDACTED]"
    assert settings.user == "bob"


async def test_device_code_whose_account_cannot_be_named_connects_nothing(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.trakt.state.device_interval = 0
    sb.trakt.faults.error(503, count=1, path_prefix="/users/settings")
    user = uuid.uuid4()
    device = await _device(gw, client, user)
    assert sb.trakt.approve_device(device["user_code"], "bob")

    answer = await _poll(gw, client, user, device["device_code"])

    assert answer.status_code == 502, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await gw.connections() == []
    # The tokens Trakt gave for an account we could not name are handed back.
    [revoke] = sb.trakt.requests("/oauth/revoke")
    assert revoke.status == 200
    assert sb.trakt.state.access.count_live() == 1  # only the sandbox's own seeded token


@pytest.mark.parametrize(("action", "status"), [("deny", 400), ("expire", 410)])
async def test_device_code_denied_or_expired(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient, action: str, status: int
) -> None:
    sb.trakt.state.device_interval = 0
    user = uuid.uuid4()
    device = await _device(gw, client, user)
    assert sb.trakt.set_device_status(
        device["user_code"], "denied" if action == "deny" else "expired"
    )

    answer = await _poll(gw, client, user, device["device_code"])

    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await gw.connections() == []


async def test_device_code_expired_on_our_side_is_not_polled(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    user = uuid.uuid4()
    device = await _device(gw, client, user)
    await gw.sql(
        "UPDATE oauth_states SET created_at = now() - interval '1 hour', "
        "expires_at = now() - interval '1 minute'"
    )

    answer = await _poll(gw, client, user, device["device_code"])

    assert answer.status_code == 410
    assert sb.trakt.requests("/oauth/device/token") == []
    [row] = await gw.sql("SELECT state FROM oauth_states")
    assert device["device_code"] not in row["state"]


# --- revoke on disconnect -----------------------------------------------------------------


async def test_disconnect_revokes_at_trakt(
    gw: ConnectGateway, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.auto_approve = True
    user = uuid.uuid4()
    await follow(client, await gw.authorization_url(client, user, "trakt"))
    [row] = await gw.connections(user)
    token = gw.access_token(row)
    assert token_owner(sb, "trakt", token) == "sandbox"

    answer = await client.delete(f"{gw.url}{API}/connections/{row['id']}", headers=auth(user))

    assert answer.status_code == 204, answer.text
    [revoke] = sb.trakt.requests("/oauth/revoke")
    assert (revoke.method, revoke.status, revoke.body["token"]) == ("POST", 200, "[REDACTED]")
    assert token_owner(sb, "trakt", token) is None
    assert await gw.connections(user) == []


async def test_revoke_failure_is_logged_without_the_token(
    sb: Sandbox, caplog: pytest.LogCaptureFixture, infra: Infra, database_url: str
) -> None:
    sb.trakt.faults.error(503, count=1, path_prefix="/oauth/revoke")
    caplog.set_level(logging.INFO)
    async with serve_gateway(infra, database_url, sb) as gw:
        await revoke_at_service(gw.app, "trakt", SANDBOX_TOKEN, None)
        await revoke_at_service(gw.app, "lastfm", "a-session-key", None)

    assert "revoking at trakt failed: HTTP 503" in caplog.text
    assert SANDBOX_TOKEN not in caplog.text
    assert [r.status for r in sb.trakt.requests("/oauth/revoke")] == [503]
    assert sb.lastfm.requests() == []
