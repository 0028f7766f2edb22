"""What a bench's run cost Postgres and Kafka, for ``docs/capacity.md``: the rows each table
gained, changed and lost and the transactions committed in the bench's private database
(``pg_stat_user_tables`` and ``pg_stat_database``, read before and after), and the records
the run put on topics (their end offsets).

Postgres counts a backend's work when it reports its statistics: at the latest when the
backend exits, so the "after" reading is taken once the measured processes have stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

_TABLES = "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
_COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


@dataclass(frozen=True)
class DatabaseWork:
    """Transactions committed, and (inserted, updated, deleted) rows per table."""

    commits: int
    tables: Mapping[str, tuple[int, int, int]]

    def since(self, before: DatabaseWork) -> DatabaseWork:
        zero = (0, 0, 0)
        tables = {
            name: (
                rows[0] - before.tables.get(name, zero)[0],
                rows[1] - before.tables.get(name, zero)[1],
                rows[2] - before.tables.get(name, zero)[2],
            )
            for name, rows in self.tables.items()
        }
        # The reading's own transaction is not the run's.
        return DatabaseWork(self.commits - before.commits - 1, tables)

    def describe(self, per: int, unit: str) -> list[str]:
        """Lines: commits and rows written per ``unit``, then each table that changed."""
        written = sum(sum(rows) for rows in self.tables.values())
        lines = [
            f"postgres:      {self.commits / per:10.4f} commits per {unit}, "
            f"{written / per:.2f} rows written (inserted+updated+deleted) per {unit}"
        ]
        for name, (ins, upd, dele) in sorted(self.tables.items()):
            if ins or upd or dele:
                lines.append(
                    f"  {name:<22} +{ins / per:.3f} ~{upd / per:.3f} -{dele / per:.3f} per {unit}"
                )
        return lines


async def database_work(dsn: str) -> DatabaseWork:
    conn = await asyncpg.connect(dsn)
    try:
        tables = {
            r["relname"]: (r["n_tup_ins"], r["n_tup_upd"], r["n_tup_del"])
            for r in await conn.fetch(_TABLES)
        }
        commits = await conn.fetchval(_COMMITS)
    finally:
        await conn.close()
    return DatabaseWork(int(commits), tables)


async def records_on(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    """How many records each topic holds (the sum of its partitions' end offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    counts = dict.fromkeys(topics, 0)
    for tp, end in ends.items():
        counts[tp.topic] += end
    return counts


async def topics_named(bootstrap: str, prefix: str) -> list[str]:
    """Every topic whose name starts with ``prefix`` (a run's own, whoever made them: the
    broker creates the topics a service produces to on first use)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return sorted(t for t in await consumer.topics() if t.startswith(prefix))
    finally:
        await consumer.stop()
