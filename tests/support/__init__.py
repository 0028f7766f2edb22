"""Helpers shared by the test suites: infrastructure discovery, per-test databases and topics."""
