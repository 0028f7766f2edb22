"""Every metric the dashboard, the alerting rules and the autoscaling signal select exists:
either the services register it (prometheus_client's registry, with the _total, _bucket,
_count and _sum series) or it is an external series we run an exporter for."""

from __future__ import annotations

import pytest

from tests.deploy.support import (
    EXTERNAL_METRICS,
    adapter_exprs,
    dashboard_exprs,
    metric_names,
    registered_families,
    registered_metric_names,
    rule_exprs,
)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "histogram_quantile(0.99, sum by (service, le) "
            '(rate(a_seconds_bucket{service=~"$service"}[$__rate_interval])))',
            {"a_seconds_bucket"},
        ),
        (
            "max by (service) (b) == 0 and on (service) max by (service) (c offset 1h) > 0",
            {"b", "c"},
        ),
        ('sum(rate(d_total{status=~"5.."}[5m])) / sum(rate(d_total[5m]))', {"d_total"}),
        ("label_values(e_enabled, service)", {"e_enabled"}),
        ('up{job=~"scrobble-.*"} == 0', {"up"}),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used."""
    used: dict[str, set[str]] = {}
    sources = {
        "rules": rule_exprs(),
        "dashboard": dashboard_exprs(),
        "adapter": adapter_exprs(),
    }
    for source, exprs in sources.items():
        for where, expr in exprs.items():
            for name in metric_names(expr):
                used.setdefault(name, set()).add(f"{source}: {where}")
    return used


def test_the_artefacts_select_metrics_at_all() -> None:
    used = used_metrics()
    assert len(used) >= 20, sorted(used)
    assert "kafka_consumergroup_lag" in used


def test_the_intake_metrics_are_in_the_registry() -> None:
    """scrobble_intake is among the packages imported, so its alert and panels are checked
    against what it really registers."""
    families = registered_families()
    for family in ("requests", "events", "skipped", "source_requests"):
        assert f"scrobble_intake_{family}_total" in families[f"scrobble_intake_{family}"]
    assert (
        "scrobble_intake_request_duration_seconds_bucket"
        in families["scrobble_intake_request_duration_seconds"]
    )
    assert "rules: ScrobbleIntakeSourceFailing" in used_metrics().get(
        "scrobble_intake_source_requests_total", set()
    )


def test_every_metric_used_exists() -> None:
    known = registered_metric_names() | EXTERNAL_METRICS
    missing = {name: sorted(where) for name, where in used_metrics().items() if name not in known}
    assert not missing, "metrics used but not registered by any service:\n" + "\n".join(
        f"  {name}: {', '.join(where)}" for name, where in sorted(missing.items())
    )


def test_every_registered_metric_is_on_the_dashboard() -> None:
    on_dashboard = {name for expr in dashboard_exprs().values() for name in metric_names(expr)}
    unshown = sorted(
        family
        for family, series in registered_families().items()
        if family.startswith("scrobble_") and not series & on_dashboard
    )
    assert not unshown, f"registered but on no dashboard panel: {unshown}"
