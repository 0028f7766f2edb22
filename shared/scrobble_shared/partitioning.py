"""The partition a Kafka key goes to, as every client puts it, with each key's hash kept.

aiokafka's default partitioner is Kafka's murmur2 of the key, so the same key lands on
the same partition whichever client produced it; it hashes in pure Python, and the keys
of our producers (connection ids in ingest, user ids in the intake) come back again and
again, so each key's hash is worked out once.
"""

from __future__ import annotations

import functools

from aiokafka.partitioner import DefaultPartitioner, murmur2


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def keyed_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]
