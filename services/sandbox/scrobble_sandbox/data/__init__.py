"""Data files the sandbox ships: the AniList GraphQL schema (SDL)."""
