"""Prometheus metrics of the dispatcher (CONTRACTS section 6)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SENT = Counter(
    "scrobble_scrobbles_sent_total",
    "Work delivered, by service and outcome",
    ["service", "outcome"],
)
RETRIED = Counter("scrobble_scrobbles_retried_total", "Work scheduled for another try", ["service"])
RATE_LIMITED = Counter(
    "scrobble_rate_limited_total",
    "Answers that said to slow down (429, Last.fm error 29): the work waited, no attempt spent",
    ["service"],
)
DEAD = Counter("scrobble_scrobbles_dead_total", "Work that failed for good", ["service"])
NOW_PLAYING_FAILED = Counter(
    "scrobble_now_playing_failed_total", "Now-playing calls that did not go through", ["service"]
)
REQUEST_SECONDS = Histogram(
    "scrobble_external_request_seconds",
    "Duration of calls to the external services",
    ["service", "endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RATE_LIMIT_WAIT = Histogram(
    "scrobble_rate_limit_wait_seconds",
    "Time held before a call to stay under a service's limits",
    ["service"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2),
)
DELAY = Histogram(
    "scrobble_delivery_delay_seconds",
    "From the play's occurred_at to delivery at the service",
    ["service"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
