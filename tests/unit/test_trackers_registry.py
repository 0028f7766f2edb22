"""The registry of trackers: what every entry must hold for the house to use it blindly."""

from __future__ import annotations

import uuid

import pytest

from scrobble_shared.settings import load_settings
from scrobble_shared.trackers.http import BatchingClient
from scrobble_shared.trackers.registry import (
    SERVICES,
    TRACKERS,
    UnknownTracker,
    pacing_keys,
    tracker,
)


def test_names_and_setting_prefixes_are_unique() -> None:
    assert len(set(SERVICES)) == len(SERVICES)
    prefixes = [t.settings.prefix for t in TRACKERS]
    assert len(set(prefixes)) == len(prefixes)
    names = [n for t in TRACKERS for n in t.settings.names()]
    assert len(set(names)) == len(names), "two trackers read the same setting"


@pytest.mark.parametrize("entry", TRACKERS, ids=lambda t: t.name)
def test_each_tracker_builds_what_it_declares(entry: object) -> None:
    found = tracker(getattr(entry, "name", ""))
    config = load_settings({}).tracker(found.name)
    client = found.client(config)
    assert client.service == found.name
    assert found.reader(config).service == found.name
    if found.batch_size > 1:
        assert isinstance(client, BatchingClient), "a batch size needs a batching client"
    if found.resolver is not None:
        assert found.resolver(config).service == found.name
    assert found.play.takes, "a tracker takes something"
    assert pacing_keys(found.name, uuid.uuid4(), "app"), "every write counts against a limit"


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(UnknownTracker, match="myspace"):
        tracker("myspace")
