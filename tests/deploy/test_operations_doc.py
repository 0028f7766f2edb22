"""docs/operations.md keeps up with the code: every setting is in its configuration
reference, every alert has a runbook section, and every metric family is listed."""

from __future__ import annotations

import re

from scrobble_shared.settings import Settings
from scrobble_shared.trackers.registry import TRACKERS
from tests.deploy.support import OPERATIONS, registered_families, rule_exprs


def section(title: str) -> str:
    text = OPERATIONS.read_text()
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"no section {title!r} in {OPERATIONS.name}"
    return found.group(1)


def test_every_setting_is_in_the_configuration_reference() -> None:
    table = section("Configuration reference")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    # A tracker's settings are read by its folder's declaration, not as model fields.
    names = {name.upper() for name in Settings.model_fields}
    names |= {name for tracker in TRACKERS for name in tracker.settings.names()}
    missing = sorted(name for name in names if name not in documented)
    assert not missing, f"settings missing from the configuration reference: {missing}"


def test_every_alert_has_a_runbook_section() -> None:
    runbook = section("Runbook")
    for alert in rule_exprs():
        assert f"### {alert}\n" in runbook, alert


def test_the_intake_section_covers_its_settings_answers_and_commands() -> None:
    intake = section("Intake (media-server webhooks)")
    settings = {name.upper() for name in Settings.model_fields if name.startswith("intake_")}
    assert settings, "no INTAKE_* settings"
    for name in sorted(settings):
        assert f"| `{name}` |" in intake, name
    answers = set(re.findall(r"^\| (\d{3}) \|", intake, re.M))
    assert answers == {"202", "204", "207", "400", "404", "413", "415", "503"}, sorted(answers)
    for command in ("add", "map", "list", "rotate"):
        assert f"scrobble source {command}" in intake, command
    assert "### Upgrading\n" in intake
    assert "`scrobble migrate`" in intake
    assert "0007" in intake


def test_every_metric_family_is_listed() -> None:
    listed = section("Metrics")
    missing = sorted(
        family
        for family, series in registered_families().items()
        if family.startswith("scrobble_") and not any(f"`{name}" in listed for name in series)
    )
    assert not missing, f"metrics missing from {OPERATIONS.name}: {missing}"
