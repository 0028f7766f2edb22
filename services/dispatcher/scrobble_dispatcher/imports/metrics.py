"""Prometheus metrics of history imports (docs/operations.md lists them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PAGES = Counter("scrobble_import_pages_total", "History pages imported", ["service"])
ITEMS = Counter(
    "scrobble_import_items_total",
    "Items read from a service's history: added, or already imported",
    ["service", "outcome"],
)
JOBS = Gauge("scrobble_import_jobs", "Import jobs by state (sampled from Postgres)", ["state"])
SYNC_WORK = Counter(
    "scrobble_import_sync_work_total",
    "Scrobble work queued for other connections from imported items",
    ["service"],
)
