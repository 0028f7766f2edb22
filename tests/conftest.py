"""Fixtures for every suite. Integration fixtures start (or find) real Kafka and Postgres
lazily, so the unit tests alone need neither."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import databases
from tests.support.infra import Infra, discover
from tests.support.topics import Topics


@pytest.fixture(scope="session")
def infra() -> Infra:
    return discover()


@pytest.fixture(scope="session")
async def migrated_template(infra: Infra) -> AsyncIterator[str]:
    name = await databases.create_migrated_template(infra.database_url)
    yield name
    await databases.drop_database(infra.database_url, name)


@pytest.fixture
async def database_url(infra: Infra, migrated_template: str) -> AsyncIterator[str]:
    """A fresh database with the current schema, private to this test."""
    name = databases.unique_name("t")
    dsn = await databases.create_database(infra.database_url, name, template=migrated_template)
    yield dsn
    await databases.drop_database(infra.database_url, name)


@pytest.fixture
async def empty_database_url(infra: Infra) -> AsyncIterator[str]:
    """A fresh database with no schema at all (for migration tests)."""
    name = databases.unique_name("e")
    dsn = await databases.create_database(infra.database_url, name)
    yield dsn
    await databases.drop_database(infra.database_url, name)


@pytest.fixture
async def topics(infra: Infra) -> AsyncIterator[Topics]:
    """Topic names private to this test; the topics it created are deleted afterwards."""
    private = Topics(infra.kafka_bootstrap)
    yield private
    await private.delete_created()
