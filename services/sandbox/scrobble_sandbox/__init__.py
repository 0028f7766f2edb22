"""Fakes of the five external services, for tests and the quick start."""
