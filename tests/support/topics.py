"""Per-test Kafka topic names and their creation on the real broker."""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic


class Topics:
    """Hands out topic names private to one test: ``t<hex>.<name>``."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []

    def name(self, base: str) -> str:
        return f"{self.prefix}.{base}"

    async def create(
        self, base: str, partitions: int = 3, config: dict[str, str] | None = None
    ) -> str:
        topic = self.name(base)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        name=topic,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs=config or {},
                    )
                ]
            )
        finally:
            await admin.close()
        self.created.append(topic)
        return topic

    async def delete_created(self) -> None:
        """Remove this test's topics so the broker does not pile up partitions."""
        if not self.created:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(self.created)
        finally:
            await admin.close()
