"""Prometheus metrics of the intake (CONTRACTS section 6).

Labels stay small: the source kind, an outcome word, the action. ``source`` on
:data:`SOURCE_REQUESTS` is a source's id (a media server: an install has a handful, made by
people, never by traffic); it carries neither a user id nor a secret, and requests whose
secret names no source are never counted per source.
"""

from __future__ import annotations

import functools
from typing import Final
from uuid import UUID

from prometheus_client import Counter, Histogram

# What became of a request (scrobble_intake_requests_total{outcome}).
PUBLISHED: Final = "published"  # every event it carried is on the playback topic
PARTIAL: Final = "partial"  # events endpoint: some events rejected, the rest published
IGNORED: Final = "ignored"  # an event type the intake does not use (204)
FILTERED: Final = "filtered"  # kept out by the source's filters (202)
UNMAPPED: Final = "unmapped"  # a server user the source maps onto nobody (202)
INVALID: Final = "invalid"  # unusable body (400)
UNSUPPORTED: Final = "unsupported_media_type"  # a content type the server never sends (415)
TOO_LARGE: Final = "too_large"  # over INTAKE_MAX_BODY (413)
UNKNOWN_SOURCE: Final = "unknown_source"  # no source has this secret (404)
UNAVAILABLE: Final = "unavailable"  # Kafka or Postgres away (503)

# Outcomes that mean the source's webhooks are not getting through.
FAILED_OUTCOMES: Final = frozenset({INVALID, UNSUPPORTED, TOO_LARGE, UNAVAILABLE})

REQUESTS = Counter(
    "scrobble_intake_requests_total",
    "Webhook and event requests, by source kind and what became of them",
    ["kind", "outcome"],
)
EVENTS = Counter(
    "scrobble_intake_events_total",
    "Playback events published to the playback topic, by source kind and action",
    ["kind", "action"],
)
SKIPPED = Counter(
    "scrobble_intake_skipped_total",
    "Plays answered 2xx but not published, by source kind and why (filter or mapping)",
    ["kind", "reason"],
)
REQUEST_SECONDS = Histogram(
    "scrobble_intake_request_duration_seconds",
    "Time from a request's arrival to its answer, publish included",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SOURCE_REQUESTS = Counter(
    "scrobble_intake_source_requests_total",
    "Requests of each known source, by result (ok: answered 2xx; failed: 4xx or 503)",
    ["source", "result"],
)


# Children looked up once: labels() takes a lock and hashes its values on every call.
@functools.lru_cache(maxsize=256)
def requests(kind: str, outcome: str) -> Counter:
    return REQUESTS.labels(kind, outcome)


@functools.lru_cache(maxsize=4096)
def source_requests(source_id: UUID, ok: bool) -> Counter:
    return SOURCE_REQUESTS.labels(str(source_id), "ok" if ok else "failed")
