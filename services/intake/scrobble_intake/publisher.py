"""Putting playback events on the playback topic: keyed by our user id, through an
idempotent producer with ``acks=all``, answered only once the broker has them all.

Failure policy: a publish that fails or does not finish within ``INTAKE_PUBLISH_TIMEOUT``
raises :class:`Unavailable` and the request is answered 503 with ``Retry-After``, so the
media server sends the webhook again. Some of its events may still reach the topic (a
batch the broker took just before the failure, or one the producer sends after the
deadline): they carry the same derived event ids as the resend, and ingest takes each id
once, so a retried webhook has exactly one effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

Record = tuple[bytes, bytes]


class Unavailable(Exception):
    """Kafka did not take the events in time; answer 503 and let the server resend."""


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout: timedelta) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout.total_seconds()

    async def publish(self, records: Sequence[Record]) -> None:
        """Every (key, value) on the topic, or :class:`Unavailable`."""
        try:
            async with asyncio.timeout(self._timeout_s):
                # send() waits for the topic's metadata when it has none: bounded too.
                sends = [await self._send(key, value) for key, value in records]
                for sent in sends:
                    # Shielded: the producer owns these futures; a timeout must not cancel them.
                    await asyncio.shield(sent)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise Unavailable(type(exc).__name__) from None

    async def _send(self, key: bytes, value: bytes) -> asyncio.Future[object]:
        sent: asyncio.Future[object] = await self._producer.send(self._topic, value, key=key)
        # A late failure after the answer has nobody to tell; it is read here so asyncio
        # does not log it as never retrieved.
        sent.add_done_callback(_retrieve)
        return sent

    async def ready(self) -> bool:
        return bool(await self._producer.client.force_metadata_update())


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()
