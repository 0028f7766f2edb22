"""Fake of the AniList GraphQL API and its OAuth pages."""
