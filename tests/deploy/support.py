"""What the deployment tests share: where the artefacts and the linters are, the metric
names a PromQL expression uses, and the metric names the services register."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_DIR = DEPLOY / "observability" / "prometheus" / "rules"
RULES = RULES_DIR / "revenge-scrobble.rules.yaml"
RULE_TESTS = RULES_DIR / "revenge-scrobble.rules.test.yaml"
DASHBOARD = DEPLOY / "observability" / "grafana" / "dashboards" / "revenge-scrobble.json"
ADAPTER_VALUES = DEPLOY / "helm" / "prometheus-adapter-values.yaml"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
CHART = DEPLOY / "helm" / "revenge-scrobble"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
OPERATIONS = REPO / "docs" / "operations.md"

TOOLS = REPO / ".local" / "tools"
INSTALL_LINTERS = DEPLOY / "tools" / "install-linters.sh"

# Series that come from outside the project (kafka-exporter, Prometheus itself).
EXTERNAL_METRICS = frozenset({"kafka_consumergroup_lag", "up"})

# The packages whose modules may register metrics (every module is imported, so the
# intake's scrobble_intake.metrics is among them).
SERVICE_PACKAGES = ("scrobble_ingest", "scrobble_dispatcher", "scrobble_gateway", "scrobble_intake")


def tool(name: str) -> str:
    """A linter from deploy/tools/install-linters.sh, or a system one (promtool)."""
    for candidate in (TOOLS / "bin" / name, TOOLS / "linters" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise AssertionError(
        f"{name} not found: run `bash {INSTALL_LINTERS.relative_to(REPO)}` "
        "(promtool and prometheus: `apt-get install -y prometheus`)"
    )


def run(*args: str, cwd: Path = REPO, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool; a non-zero exit fails the test with its output."""
    done = subprocess.run(
        list(args), cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done


# --- PromQL -------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_LABEL_VALUES = re.compile(r"label_values\(\s*([^,()]*(?:\{[^{}]*\})?)\s*(?:,\s*\w+\s*)?\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    aggregations, keywords, label names or parts of strings, ranges and durations."""
    text = _LABEL_VALUES.sub(r"\1", expr)
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    text = _VARIABLE.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def rule_exprs() -> dict[str, str]:
    document = yaml.safe_load(RULES.read_text())
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in document["groups"]
        for rule in group["rules"]
    }


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_exprs() -> dict[str, str]:
    """Every PromQL of the dashboard: panel targets and template variable queries."""
    found: dict[str, str] = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found[f"{panel['title']} / {target['refId']}"] = target["expr"]
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            found[f"variable {variable['name']}"] = query
    return found


def adapter_exprs() -> dict[str, str]:
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    found = {}
    for rule in values["rules"]["external"]:
        name = f"prometheus-adapter {rule['name']['as']}"
        found[name] = f"{rule['seriesQuery']} + {rule['metricsQuery']}"
    return found


# --- what the code registers ----------------------------------------------------------------


def _import_all(packages: Iterable[str]) -> None:
    """Import every module of the services (nothing connects at import time, STYLE), so
    that every metric they define is in prometheus_client's default registry."""
    for name in packages:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            importlib.import_module(module.name)


def registered_families() -> dict[str, set[str]]:
    """Every metric family the services register, with the series names it can expose."""
    _import_all(SERVICE_PACKAGES)
    families: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        base = family.name
        if family.type == "counter":
            series = {f"{base}_total", f"{base}_created"}
        elif family.type == "histogram":
            series = {base, f"{base}_bucket", f"{base}_count", f"{base}_sum", f"{base}_created"}
        elif family.type == "summary":
            series = {base, f"{base}_count", f"{base}_sum", f"{base}_created"}
        else:
            series = {base}
        families[base] = series | {sample.name for sample in family.samples}
    return families


def registered_metric_names() -> set[str]:
    """Every series name the services can expose, suffixes included."""
    return {name for series in registered_families().values() for name in series}
