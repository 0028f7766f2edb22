"""Postgres: connecting with clear errors, and the schema migrations."""
