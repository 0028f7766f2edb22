"""The OpenAPI document and the app agree: every registered route is documented and every
documented route is registered; the document's schemas are valid JSON Schema 2020-12."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from jsonschema import Draft202012Validator

from scrobble_gateway.app import create_app
from scrobble_gateway.openapi import load_document
from scrobble_gateway.page import PAGE_TEMPLATES
from scrobble_shared.settings import SettingsError, load_settings

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def settings(**environ: str) -> Any:
    base = {
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "GATEWAY_JWT_SECRET": "s" * 32,
        "GATEWAY_JWT_ISSUER": "https://auth.example",
        "GATEWAY_JWT_AUDIENCE": "revenge-scrobble",
    }
    return load_settings({**base, **environ})


def registered_routes() -> set[tuple[str, str]]:
    """The JSON API's routes: every route but the page's own HTML ones."""
    app = create_app(settings())
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        # aiohttp adds HEAD to every GET by itself.
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical not in PAGE_TEMPLATES
    }


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in load_document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_registered_route_is_documented_and_every_documented_one_registered() -> None:
    registered, documented = registered_routes(), documented_routes()
    assert registered - documented == set(), "registered but not documented"
    assert documented - registered == set(), "documented but not registered"


def test_the_page_routes_are_html_ones_only() -> None:
    assert {"/connections", "/activity", "/sign-in", "/sign-out", "/static/{name}"} <= (
        PAGE_TEMPLATES
    )
    assert not any(path.startswith("/api/") for path in PAGE_TEMPLATES)
    assert "/session" not in PAGE_TEMPLATES


def test_the_connect_routes_are_among_them() -> None:
    assert {
        ("POST", "/api/v1/scrobble/connect/{service}"),
        ("GET", "/api/v1/scrobble/{service}/callback"),
        ("POST", "/api/v1/scrobble/connect/trakt/device"),
        ("POST", "/api/v1/scrobble/connect/trakt/device/poll"),
    } <= registered_routes()


def test_the_document_is_openapi_3_1_with_valid_schemas() -> None:
    document = load_document()
    assert document["openapi"].startswith("3.1.")
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    operation_ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    assert len(operation_ids) == len(set(operation_ids))


def test_every_protected_operation_documents_401_and_public_ones_no_security() -> None:
    public = {"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"}
    public.add("/api/v1/scrobble/{service}/callback")
    for path, item in load_document()["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            if path in public:
                assert operation.get("security") == [], (method, path)
            else:
                assert "security" not in operation, (method, path)
                assert "401" in operation["responses"], (method, path)
                # Every authenticated request is charged to a quota (quotas.py).
                assert "429" in operation["responses"], (method, path)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"TOKEN_ENCRYPTION_KEY": ""}, "TOKEN_ENCRYPTION_KEY"),
        ({"GATEWAY_JWT_SECRET": ""}, "GATEWAY_JWT_SECRET"),
    ],
)
def test_the_app_refuses_to_start_without_its_keys(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        create_app(settings(**environ))


def test_a_jwks_url_alone_is_enough() -> None:
    create_app(settings(GATEWAY_JWT_SECRET="", GATEWAY_JWKS_URL="http://127.0.0.1:1/jwks"))
