"""Fake of the Trakt API v2 and its OAuth host."""
