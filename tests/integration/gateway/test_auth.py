"""Bearer tokens: who may call what. 401 with ``WWW-Authenticate: Bearer`` for anything
wrong with the token (another issuer or audience among it), 403 for a non-admin on an admin
route, public routes open; clock skew within GATEWAY_JWT_LEEWAY is forgiven."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from tests.integration.gateway.conftest import (
    JWT_AUDIENCE,
    Gateway,
    bearer,
    make_token,
)

USER = uuid.UUID("5f1d7c1e-2b44-4e0e-8a3c-7c2f5d0b9e11")
CONNECTIONS = "/api/v1/scrobble/connections"
DEAD_LETTERS = "/api/v1/scrobble/admin/dead-letters"


async def assert_unauthorized(gateway: Gateway, headers: dict[str, str], why: str) -> None:
    answer = await gateway.client.get(CONNECTIONS, headers=headers)
    assert answer.status == 401, why
    assert answer.headers["WWW-Authenticate"].startswith("Bearer"), why
    assert answer.content_type == "application/problem+json", why
    body = await answer.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"


async def test_no_token_is_401_with_a_bearer_challenge(gateway: Gateway) -> None:
    await assert_unauthorized(gateway, {}, "no Authorization header")
    await assert_unauthorized(gateway, {"Authorization": "Basic dXNlcjpwdw=="}, "basic auth")
    await assert_unauthorized(gateway, {"Authorization": "Bearer "}, "empty bearer")


@pytest.mark.parametrize(
    ("why", "token"),
    [
        ("bad signature", make_token(USER, secret="another-secret-entirely-0123456789")),
        ("expired (beyond the leeway)", make_token(USER, expires_in=-120)),
        ("nbf in the future", make_token(USER, nbf=int(time.time()) + 3600)),
        ("sub not a uuid", make_token("alice")),
        ("roles not a list", make_token(USER, claims_roles="admin")),
        ("not a JWT", "not.a.jwt"),
        ("alg none", jwt.encode({"sub": str(USER), "exp": int(time.time()) + 60}, "", "none")),
        ("another audience", make_token(USER, aud="other-app")),
        ("another issuer", make_token(USER, iss="https://other")),
        ("no audience", make_token(USER, aud=None)),
        ("no issuer", make_token(USER, iss=None)),
        ("an audience list without ours", make_token(USER, aud=["other-app", "third"])),
        ("iat far in the future", make_token(USER, iat=int(time.time()) + 3600)),
    ],
)
async def test_bad_tokens_are_401(gateway: Gateway, why: str, token: str) -> None:
    await assert_unauthorized(gateway, bearer(token), why)


async def test_a_token_without_exp_is_401(gateway: Gateway) -> None:
    token = make_token(USER, exp=None)
    assert "exp" not in jwt.decode(token, options={"verify_signature": False})
    await assert_unauthorized(gateway, bearer(token), "no exp")


async def test_a_valid_token_reaches_the_route(gateway: Gateway) -> None:
    answer = await gateway.client.get(CONNECTIONS, headers=gateway.auth(USER))
    assert answer.status == 200
    assert await answer.json() == {"items": [], "next_cursor": None}


async def test_a_token_for_another_app_cannot_read_the_admin_routes(gateway: Gateway) -> None:
    # Signed with our shared secret, but issued by someone else for someone else.
    foreign = make_token(USER, ("admin",), aud="other-app", iss="https://other")
    answer = await gateway.client.get(DEAD_LETTERS, headers=bearer(foreign))
    body = await answer.json()
    print(f"\nforeign token (aud other-app, iss https://other, admin): {answer.status} {body}")
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "audience" in body["detail"] or "issuer" in body["detail"]
    ours = await gateway.client.get(DEAD_LETTERS, headers=gateway.auth(USER, "admin"))
    assert ours.status == 200, await ours.text()


async def test_an_audience_list_with_ours_in_it_passes(gateway: Gateway) -> None:
    token = make_token(USER, aud=["other-app", JWT_AUDIENCE])
    answer = await gateway.client.get(CONNECTIONS, headers=bearer(token))
    assert answer.status == 200, await answer.text()


@pytest.mark.parametrize(
    ("why", "claims"),
    [
        ("nbf 10 s ahead", {"nbf": 10}),
        ("iat 10 s ahead", {"iat": 10}),
        ("exp 10 s ago", {"exp": -10}),
    ],
)
async def test_clock_skew_within_the_leeway_is_forgiven(
    gateway: Gateway, why: str, claims: dict[str, int]
) -> None:
    assert gateway.settings.gateway_jwt_leeway.total_seconds() == 30
    now = int(time.time())
    skewed: dict[str, Any] = {name: now + offset for name, offset in claims.items()}
    token = make_token(USER, **skewed)
    answer = await gateway.client.get(CONNECTIONS, headers=bearer(token))
    assert answer.status == 200, f"{why}: {await answer.text()}"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"])
async def test_public_routes_need_no_token(gateway: Gateway, path: str) -> None:
    answer = await gateway.client.get(path)
    assert answer.status == 200, await answer.text()


async def test_readyz_reports_postgres_and_kafka(gateway: Gateway) -> None:
    answer = await gateway.client.get("/readyz")
    assert await answer.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "kafka": "ok"},
    }


ADMIN_ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/api/v1/scrobble/admin/dead-letters", None),
    ("POST", "/api/v1/scrobble/admin/dead-letters/replay", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_routes_are_403_for_others_and_401_without_token(
    gateway: Gateway, method: str, path: str, body: object
) -> None:
    plain = await gateway.client.request(method, path, json=body, headers=gateway.auth(USER))
    assert plain.status == 403
    assert plain.content_type == "application/problem+json"
    other_role = await gateway.client.request(
        method, path, json=body, headers=gateway.auth(USER, "editor")
    )
    assert other_role.status == 403
    anonymous = await gateway.client.request(method, path, json=body)
    assert anonymous.status == 401
    admin = await gateway.client.request(
        method, path, json=body, headers=gateway.auth(USER, "admin")
    )
    assert admin.status == 200, await admin.text()
