"""A media server whose clock runs ahead: its events are dated when they were published.

Found by the chaos harness (bench/chaos, "clock skew"): a server ten minutes fast dated its
plays ten minutes into the future; ingest kept those times, Last.fm ignores scrobbles more
than five minutes ahead (code 4), and the listens went dead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from scrobble_ingest.plan import Accepted, Record, decode
from tests.support.events import event

PUBLISHED = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def record(occurred_at: datetime, published: datetime | None) -> Record:
    body = event("start", 0, content_type="track").to_json_dict()
    body["occurred_at"] = occurred_at.isoformat()
    stamp = None if published is None else int(published.timestamp() * 1000)
    return Record("playback.events", 0, 7, b"k", json.dumps(body).encode(), stamp)


def occurred(found: object) -> datetime:
    assert isinstance(found, Accepted), found
    return found.event.occurred_at


def test_an_event_dated_after_it_was_published_is_dated_when_it_was_published() -> None:
    ahead = PUBLISHED + timedelta(minutes=10)
    assert occurred(decode(record(ahead, PUBLISHED))) == PUBLISHED


def test_events_dated_before_their_publication_keep_their_time() -> None:
    behind = PUBLISHED - timedelta(minutes=10)
    assert occurred(decode(record(behind, PUBLISHED))) == behind
    assert occurred(decode(record(PUBLISHED, PUBLISHED))) == PUBLISHED


def test_a_record_without_a_timestamp_keeps_the_event_s_time() -> None:
    ahead = PUBLISHED + timedelta(minutes=10)
    assert occurred(decode(record(ahead, None))) == ahead
