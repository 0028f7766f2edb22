"""Prometheus metrics of the ingest service (CONTRACTS section 6)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "scrobble_ingest_events_total",
    "Playback records consumed, by what became of them",
    ["outcome"],
)
QUEUED = Counter(
    "scrobble_scrobbles_queued_total", "Scrobble work queued for the dispatcher", ["service"]
)
BATCH_SECONDS = Histogram(
    "scrobble_ingest_batch_seconds",
    "Time to write one batch to Postgres and publish its messages",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_FAILURES = Counter(
    "scrobble_ingest_batch_failures_total",
    "Batches that failed and will be consumed again, by reason",
    ["reason"],
)
PAUSED = Gauge(
    "scrobble_ingest_paused", "1 while the consumer waits for Postgres or Kafka to come back"
)
OUTBOX_RECOVERED = Counter(
    "scrobble_ingest_outbox_recovered_total",
    "Messages left behind by a stopped process and published by recovery",
)
PLAYS_FINISHED_BY_SILENCE = Counter(
    "scrobble_ingest_plays_finished_by_silence_total",
    "Plays that ended without a stop and were closed by the silence sweeper",
)
