"""Fixtures of the deployment suite: the per-test ingest setup of the integration suites
(private database, topics and consumer groups) for the real-Prometheus scrape test."""

from tests.support.ingest import ingest_setup

__all__ = ["ingest_setup"]
