"""Time helpers: one place that reads the wall clock and formats the services' timestamps."""

import time
from datetime import UTC, datetime


def now() -> float:
    """Seconds since the epoch, as the fakes see it."""
    return time.time()


def iso_utc(ts: float, *, millis: bool = True) -> str:
    """Format like Trakt and Simkl do: `2026-11-20T21:04:05.000Z`."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float:
    """Parse an ISO 8601 timestamp; a naive one is taken as UTC. Raises ValueError."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
