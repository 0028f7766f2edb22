"""Fixtures shared by the integration suites."""

from tests.support.ingest import ingest_setup

__all__ = ["ingest_setup"]
