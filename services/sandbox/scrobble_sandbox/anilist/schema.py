"""The AniList schema, read from the SDL shipped in the package, built once per process."""

from functools import cache
from importlib.resources import files

from graphql import GraphQLSchema, build_schema


def schema_text() -> str:
    return files("scrobble_sandbox.data").joinpath("anilist.graphqls").read_text("utf-8")


@cache
def anilist_schema() -> GraphQLSchema:
    # Building takes ~0.4 s; cached so tests that start many sandboxes pay it once.
    return build_schema(schema_text())
