"""deploy/helm/revenge-scrobble: `helm lint`, `helm template` validated strictly against the
Kubernetes API schemas (kubernetes-validate, and kubeconform -strict on the same schemas
made standalone: both come from PyPI's kubernetes-validate, nothing is downloaded), and what
the chart promises: probes, resources, a PDB per service, secrets only by reference, the
migration hook, the gateway, intake and metrics Services, the dispatcher's lag-based
autoscaling, and the intake listening on every interface of its one port."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import CHART, TOOLS, run, tool

# The chart's floor (Chart.yaml kubeVersion) and the newest schemas kubernetes-validate has.
KUBE_VERSIONS = ("1.25.0", "1.37.0")
SERVICES = ("ingest", "dispatcher", "gateway", "intake")
SECRET_NAMES = {
    "DATABASE_URL",
    "TOKEN_ENCRYPTION_KEY",
    "GATEWAY_JWT_SECRET",
    "TRAKT_CLIENT_SECRET",
    "LASTFM_API_SECRET",
    "LIBREFM_API_SECRET",
    "SIMKL_CLIENT_SECRET",
    "ANILIST_CLIENT_SECRET",
    "LISTENBRAINZ_TOKEN",
}


@cache
def render(kube_version: str = "1.37.0", *sets: str) -> str:
    args = [tool("helm"), "template", "rs", str(CHART), "--kube-version", kube_version]
    for value in sets:
        args += ["--set", value]
    return run(*args).stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(text: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents(text) if d["kind"] == kind}


def component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


def test_helm_lint_strict() -> None:
    for version in KUBE_VERSIONS:
        run(tool("helm"), "lint", "--strict", "--kube-version", version, str(CHART))


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_rendered_manifests_pass_kubernetes_validate_strict(
    kube_version: str, tmp_path: Path
) -> None:
    for sets in ((), ("dispatcher.autoscaling.enabled=false", "intake.enabled=false")):
        manifest = tmp_path / "chart.yaml"
        manifest.write_text(render(kube_version, *sets))
        out = run(tool("kubernetes-validate"), "--strict", "-k", kube_version, str(manifest)).stdout
        assert out.count("passed for resource") == len(documents(manifest.read_text()))


# --- kubeconform on standalone schemas ---------------------------------------------------

SCHEMA_LAYOUT = (
    "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/"
    "{{ .ResourceKind }}{{ .KindSuffix }}.json"
)


def schema_root() -> Path:
    python = TOOLS / "linters" / "bin" / "python"
    assert python.exists(), "run deploy/tools/install-linters.sh"
    found = run(
        str(python),
        "-c",
        "import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))",
    ).stdout.strip()
    return Path(found) / "kubernetes-json-schema"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _local(node: Any) -> Any:
    """The schema with refs to the shared definitions file made document-local."""
    if isinstance(node, dict):
        return {
            k: (re.sub(r"^.*_definitions\.json#", "#", v) if k == "$ref" else _local(v))
            for k, v in node.items()
            if k != "$id"
        }
    if isinstance(node, list):
        return [_local(v) for v in node]
    return node


def standalone_schemas(kube_version: str, kinds: set[str], out: Path) -> Path:
    """kubeconform's layout (<version>-standalone-strict/<kind>-<group>-<version>.json) made
    from kubernetes-validate's schemas, each carrying the definitions it refers to."""
    source = schema_root() / f"v{kube_version}-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    target = out / f"v{kube_version}-standalone-strict"
    target.mkdir(parents=True)
    for kind in kinds:
        for path in source.glob(f"{kind}-*.json"):
            schema = json.loads(path.read_text())
            needed: dict[str, Any] = {}
            pending = [r.rsplit("/", 1)[-1] for r in _refs(schema)]
            while pending:
                name = pending.pop()
                if name not in needed:
                    needed[name] = definitions[name]
                    pending += [r.rsplit("/", 1)[-1] for r in _refs(definitions[name])]
            schema["$defs"] = needed
            (target / path.name).write_text(json.dumps(_local(schema)))
    return out


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_helm_template_through_kubeconform_strict(kube_version: str, tmp_path: Path) -> None:
    rendered = render(kube_version)
    kinds = {d["kind"].lower() for d in documents(rendered)}
    schemas = standalone_schemas(kube_version, kinds, tmp_path / "schemas")
    location = f"{schemas}/{SCHEMA_LAYOUT}"
    out = run(
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-kubernetes-version",
        kube_version,
        "-schema-location",
        location,
        stdin=rendered,
    ).stdout
    assert f"Valid: {len(documents(rendered))}, Invalid: 0, Errors: 0, Skipped: 0" in out, out


def test_kubeconform_rejects_what_the_schemas_forbid(tmp_path: Path) -> None:
    """The converted schemas really validate: an unknown field and a wrong type fail."""
    broken = render().replace("revisionHistoryLimit: 5", "revisionHistoryLimit: five", 1)
    broken = broken.replace("  minReplicas:", "  minimumReplicas:", 1)
    rendered = documents(render())
    schemas = standalone_schemas(
        "1.37.0", {d["kind"].lower() for d in rendered}, tmp_path / "schemas"
    )
    location = f"{schemas}/{SCHEMA_LAYOUT}"
    done = subprocess.run(
        [tool("kubeconform"), "-strict", "-summary", "-kubernetes-version", "1.37.0",
         "-schema-location", location],
        input=broken, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Invalid: 2" in done.stdout, done.stdout


# --- what the chart promises -------------------------------------------------------------


def test_a_deployment_pdb_and_service_per_component() -> None:
    rendered = render()
    for kind in ("Deployment", "PodDisruptionBudget", "Service"):
        assert sorted(component(d) for d in by_kind(rendered, kind).values()) == sorted(SERVICES)
    for pdb in by_kind(rendered, "PodDisruptionBudget").values():
        spec = pdb["spec"]
        assert "maxUnavailable" in spec or "minAvailable" in spec


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_probes_resources_and_non_root() -> None:
    for deployment in by_kind(render(), "Deployment").values():
        c = container(deployment)
        port = c["ports"][0]["name"]
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][bound]), component(deployment)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["args"] == [component(deployment)]


def test_secrets_only_by_reference() -> None:
    rendered = render()
    assert not by_kind(rendered, "Secret"), "the chart must not carry secret values"
    for doc in documents(rendered):
        if doc["kind"] == "ConfigMap":
            assert not SECRET_NAMES & set(doc["data"]), "secret in a ConfigMap"
    pods = [
        d["spec"]["template"]["spec"]
        for d in documents(rendered)
        if "template" in d.get("spec", {})
    ]
    for pod in pods:
        for c in pod["containers"]:
            for env in c.get("env", []):
                if env["name"] in SECRET_NAMES:
                    assert "value" not in env, env["name"]
                    assert env["valueFrom"]["secretKeyRef"]["name"] == "revenge-scrobble"
    dispatcher = container(by_kind(rendered, "Deployment")["rs-revenge-scrobble-dispatcher"])
    names = {e["name"] for e in dispatcher["env"]}
    assert {
        "DATABASE_URL",
        "TOKEN_ENCRYPTION_KEY",
        "LASTFM_API_SECRET",
        "LIBREFM_API_SECRET",
    } <= names


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    (job,) = by_kind(render(), "Job").values()
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert set(hooks) == {"pre-install", "pre-upgrade"}
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_gateway_and_metrics_services() -> None:
    services = {component(s): s for s in by_kind(render(), "Service").values()}
    assert services["gateway"]["spec"]["ports"][0]["port"] == 8080
    assert services["ingest"]["spec"]["ports"][0]["port"] == 9101
    assert services["dispatcher"]["spec"]["ports"][0]["port"] == 9102
    assert services["intake"]["spec"]["ports"][0] == {
        "name": "http", "port": 8081, "targetPort": "http", "protocol": "TCP",
    }  # fmt: skip
    assert services["intake"]["spec"]["type"] == "ClusterIP"
    exposed = render("1.37.0", "intake.service.type=LoadBalancer")
    assert by_kind(exposed, "Service")["rs-revenge-scrobble-intake"]["spec"]["type"] == (
        "LoadBalancer"
    )


def environment(rendered: str, deployment: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: its ConfigMap (envFrom), then its own env (the
    Secret's keys as ``secret:<key>``)."""
    configmaps = by_kind(rendered, "ConfigMap")
    c = container(deployment)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for variable in c.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            env[variable["name"]] = "secret:" + variable["valueFrom"]["secretKeyRef"]["key"]
    return env


def test_the_intake_listens_on_every_interface_on_8081_with_its_probes_there() -> None:
    rendered = render()
    intake = by_kind(rendered, "Deployment")["rs-revenge-scrobble-intake"]
    c = container(intake)
    assert c["image"] == "revenge-scrobble/intake:0.1.0"
    assert c["args"] == ["intake"]
    env = environment(rendered, intake)
    assert env["INTAKE_HOST"] == "0.0.0.0"  # noqa: S104 - every interface of its pod
    assert env["INTAKE_PORT"] == "8081"
    assert env["INTAKE_PUBLIC_URL"] == "https://intake.example.org"
    assert env["INTAKE_MAX_BODY"] == "1MiB"
    assert env["INTAKE_PUBLISH_TIMEOUT"] == "5s"
    assert env["DATABASE_URL"] == "secret:DATABASE_URL"
    # Only Postgres' DSN from the Secret: the intake keeps no tokens and calls no tracker.
    assert [v for v in env.values() if v.startswith("secret:")] == ["secret:DATABASE_URL"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8081}
    probes = {
        kind: (c[kind]["httpGet"]["path"], ports[c[kind]["httpGet"]["port"]])
        for kind in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probes == {
        "readinessProbe": ("/readyz", 8081),
        "livenessProbe": ("/healthz", 8081),
        "startupProbe": ("/healthz", 8081),
    }
    annotations = intake["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8081"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert intake["spec"]["replicas"] == 2


def test_intake_values_reach_its_environment() -> None:
    rendered = render(
        "1.37.0",
        "intake.publicUrl=https://hooks.example.net",
        "intake.port=9000",
        "intake.maxBody=4MiB",
        "intake.publishTimeout=2s",
        "intake.replicas=3",
    )
    intake = by_kind(rendered, "Deployment")["rs-revenge-scrobble-intake"]
    env = environment(rendered, intake)
    assert env["INTAKE_PUBLIC_URL"] == "https://hooks.example.net"
    assert env["INTAKE_PORT"] == "9000"
    assert env["INTAKE_MAX_BODY"] == "4MiB"
    assert env["INTAKE_PUBLISH_TIMEOUT"] == "2s"
    assert container(intake)["ports"][0]["containerPort"] == 9000
    assert intake["spec"]["replicas"] == 3
    # The gateway builds the URLs of the sources it makes from the same setting.
    gateway = by_kind(rendered, "Deployment")["rs-revenge-scrobble-gateway"]
    assert environment(rendered, gateway)["INTAKE_PUBLIC_URL"] == "https://hooks.example.net"


def test_the_intake_can_be_left_out() -> None:
    rendered = render("1.37.0", "intake.enabled=false")
    for kind in ("Deployment", "PodDisruptionBudget", "Service"):
        assert "intake" not in {component(d) for d in by_kind(rendered, kind).values()}, kind


def test_dispatcher_scales_on_consumer_lag() -> None:
    rendered = render()
    (hpa,) = by_kind(rendered, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rs-revenge-scrobble-dispatcher"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "scrobble_dispatcher_consumer_lag"
    assert (
        "replicas" not in by_kind(rendered, "Deployment")["rs-revenge-scrobble-dispatcher"]["spec"]
    )
    fixed = render("1.37.0", "dispatcher.autoscaling.enabled=false")
    assert not by_kind(fixed, "HorizontalPodAutoscaler")
    assert by_kind(fixed, "Deployment")["rs-revenge-scrobble-dispatcher"]["spec"]["replicas"] == 2
