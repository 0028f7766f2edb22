"""The alerting rules and scrape configs: promtool accepts them, the rule unit tests pass,
and every alert carries a severity and a runbook_url that points at a runbook section."""

from __future__ import annotations

import re

import yaml

from tests.deploy.support import DEPLOY, OPERATIONS, RULE_TESTS, RULES, RULES_DIR, run, tool

PROMETHEUS_DIR = DEPLOY / "observability" / "prometheus"
# The scrape jobs of the services: the rules and the dashboard select them by these names.
JOBS = {"scrobble-ingest", "scrobble-dispatcher", "scrobble-gateway", "scrobble-intake"}


def alerts() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    out = run(tool("promtool"), "check", "rules", str(RULES)).stdout
    assert f"SUCCESS: {len(alerts())} rules found" in out


def test_promtool_rule_unit_tests_pass() -> None:
    out = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=RULES_DIR).stdout
    assert "SUCCESS" in out


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [check for case in tests for check in case.get("alert_rule_test", [])]
    for alert in alerts():
        name = alert["alert"]
        fired = [c for c in checks if c["alertname"] == name and c.get("exp_alerts")]
        quiet = [c for c in checks if c["alertname"] == name and not c.get("exp_alerts")]
        assert fired, f"{name}: no test case where it fires"
        assert quiet, f"{name}: no test case where it stays quiet"


def test_promtool_checks_the_scrape_configs() -> None:
    for config in ("prometheus.yml", "prometheus.compose.yml"):
        out = run(tool("promtool"), "check", "config", config, cwd=PROMETHEUS_DIR).stdout
        assert "SUCCESS: 1 rule files found" in out, out


def test_every_service_is_scraped_and_watched_by_the_target_down_alert() -> None:
    (down,) = [a for a in alerts() if a["alert"] == "ScrobbleTargetDown"]
    selector = re.search(r'up\{job=~"([^"]+)"\}', str(down["expr"]))
    assert selector, down["expr"]
    for config in ("prometheus.yml", "prometheus.compose.yml"):
        document = yaml.safe_load((PROMETHEUS_DIR / config).read_text())
        jobs = {job["job_name"] for job in document["scrape_configs"]}
        assert jobs >= JOBS, f"{config}: missing {sorted(JOBS - jobs)}"
    assert {job for job in JOBS if re.fullmatch(selector.group(1), job)} == JOBS
    assert not re.fullmatch(selector.group(1), "kafka-exporter")


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the headings of docs/operations.md."""
    anchors = set()
    for line in OPERATIONS.read_text().splitlines():
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_alert_has_severity_and_a_runbook_section() -> None:
    anchors = runbook_anchors()
    for alert in alerts():
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        assert isinstance(labels, dict)
        assert isinstance(annotations, dict)
        assert labels.get("severity") in ("info", "warning", "critical"), alert["alert"]
        assert annotations.get("summary"), alert["alert"]
        url = str(annotations.get("runbook_url", ""))
        path, _, anchor = url.partition("#")
        assert path == "docs/operations.md", f"{alert['alert']}: runbook_url {url!r}"
        assert anchor == str(alert["alert"]).lower(), f"{alert['alert']}: runbook_url {url!r}"
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in {OPERATIONS.name}"
