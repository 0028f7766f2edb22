"""Fake of the ListenBrainz API (/1)."""
