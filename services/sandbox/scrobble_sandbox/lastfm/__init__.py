"""Fake of the Last.fm web service 2.0 and its web-auth page."""
