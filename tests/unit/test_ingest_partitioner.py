"""The producers' partitioner (ingest, intake): aiokafka's default choice, hashes kept."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from scrobble_shared.partitioning import keyed_partitioner


def test_every_key_lands_where_aiokafka_would_put_it() -> None:
    default = DefaultPartitioner()
    for partitions in ([0], list(range(3)), list(range(12))):
        for _ in range(500):
            key = str(uuid.uuid4()).encode()
            expected = default(key, partitions, partitions)
            assert keyed_partitioner(key, partitions, partitions) == expected
            assert keyed_partitioner(key, partitions, partitions) == expected  # cached
