"""lastfm: what the house knows about it (see ``scrobble_shared.trackers``)."""
