"""The ingest service: playback events in, exactly one scrobble per play out."""
