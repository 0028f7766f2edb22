"""deploy/compose/compose.yaml: it parses, passes the compose-spec schema, runs every part of
the stack with a health check, and gives the services the settings of CONTRACTS section 5
(pointing at the sandbox by default). `docker compose config` is not run: this machine's
docker CLI has no compose plugin and there is no engine (docs/operations.md)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from scrobble_sandbox.env import CREDENTIALS, URL_PATHS
from tests.deploy.support import COMPOSE, run, tool

LONG_RUNNING = {
    "kafka",
    "postgres",
    "ingest",
    "dispatcher",
    "gateway",
    "intake",
    "sandbox",
    "kafka-exporter",
    "prometheus",
    "grafana",
}
ONE_SHOT = {"migrate", "kafka-topics"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def environment(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment should be a mapping"
    return {str(k): str(v) for k, v in env.items()}


def default_of(value: str) -> str:
    """The default of a ``${VAR:-default}`` interpolation, or the value itself."""
    found = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return found.group(1) if found else value


def test_compose_file_passes_the_compose_spec_schema() -> None:
    run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))


def test_the_whole_stack_is_there() -> None:
    assert set(compose()["services"]) == LONG_RUNNING | ONE_SHOT


def test_long_running_services_have_health_checks() -> None:
    services = compose()["services"]
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check, f"{name}: no healthcheck"
        assert check.get("test"), f"{name}: healthcheck without a test"
        assert not check.get("disable"), f"{name}: healthcheck disabled"


def test_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        if service.get("build"):
            continue
        assert ":" in image, f"{name}: unpinned image {image}"
        assert not image.endswith(":latest"), f"{name}: unpinned image {image}"
    assert compose()["services"]["kafka"]["image"].startswith("apache/kafka:4.")
    assert compose()["services"]["postgres"]["image"].startswith("postgres:15")


def test_services_start_after_the_schema_and_topics() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("ingest", "dispatcher", "gateway", "intake"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["kafka-topics"]["condition"] == "service_completed_successfully", name


def test_two_dispatcher_replicas() -> None:
    dispatcher = compose()["services"]["dispatcher"]
    assert dispatcher["deploy"]["replicas"] == 2
    assert "ports" not in dispatcher, "replicas cannot share a host port"


def test_services_get_the_contract_settings() -> None:
    for name in ("ingest", "dispatcher", "gateway"):
        env = environment(name)
        for variable in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TOKEN_ENCRYPTION_KEY"):
            assert variable in env, f"{name}: {variable} missing"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert "@postgres:5432/" in env["DATABASE_URL"]
        # Secrets come from the operator's .env and have no default.
        assert env["TOKEN_ENCRYPTION_KEY"].startswith("${TOKEN_ENCRYPTION_KEY:?")
    gateway = environment("gateway")
    assert gateway["GATEWAY_JWT_SECRET"].startswith("${GATEWAY_JWT_SECRET:?")
    assert gateway["GATEWAY_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert environment("ingest")["METRICS_PORT"] == "9101"
    assert environment("dispatcher")["METRICS_PORT"] == "9102"


def test_the_intake_listens_on_8081_with_only_postgres_and_kafka() -> None:
    intake = compose()["services"]["intake"]
    assert intake["build"]["target"] == "intake"
    env = environment("intake")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["INTAKE_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert env["INTAKE_PORT"] == "8081"
    assert default_of(env["INTAKE_PUBLIC_URL"]) == "http://localhost:8081"
    assert default_of(env["INTAKE_MAX_BODY"]) == "1MiB"
    assert default_of(env["INTAKE_PUBLISH_TIMEOUT"]) == "5s"
    # It stores no tokens and calls no tracker: no key, no app credentials.
    unneeded = {"TOKEN_ENCRYPTION_KEY", "GATEWAY_JWT_SECRET", *CREDENTIALS, *URL_PATHS}
    assert not unneeded & set(env), sorted(unneeded & set(env))
    assert intake["ports"] == ["8081:8081"]
    assert intake["healthcheck"]["test"] == [
        "CMD", "python", "/app/healthcheck.py", "INTAKE_PORT", "8081",
    ]  # fmt: skip
    # The gateway makes sources too and builds their URLs from the same setting.
    assert environment("gateway")["INTAKE_PUBLIC_URL"] == env["INTAKE_PUBLIC_URL"]


def test_external_services_default_to_the_sandbox() -> None:
    for name in ("dispatcher", "gateway"):
        env = environment(name)
        for variable, path in URL_PATHS.items():
            assert default_of(env[variable]) == f"http://sandbox:8900{path}", (name, variable)
        for variable, value in CREDENTIALS.items():
            assert default_of(env[variable]) == value, (name, variable)


def test_prometheus_and_grafana_get_the_repository_artefacts() -> None:
    services = compose()["services"]
    assert "../observability/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert (
        "--config.file=/etc/prometheus/prometheus.compose.yml" in services["prometheus"]["command"]
    )
    volumes = services["grafana"]["volumes"]
    assert "../observability/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    assert "../observability/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
