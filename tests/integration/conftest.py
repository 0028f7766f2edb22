"""Fixtures shared by the integration suites."""

from tests.support.ingest import ingest_setup
from tests.support.intake import intake_setup

__all__ = ["ingest_setup", "intake_setup"]
