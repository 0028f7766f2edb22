"""Fake of the Simkl API and its OAuth / PIN pages."""
