"""The ingest consumer publishes each batch after the previous one, in the background, and
after a failed publish hands everything left to outbox recovery before going on."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest

from scrobble_ingest.connections_cache import ConnectionCache
from scrobble_ingest.consumer import Ingestor
from scrobble_shared.outbox import OutboxMessage, OutboxRelay
from scrobble_shared.work_message import WorkTopics


def message(n: int) -> OutboxMessage:
    return OutboxMessage("scrobble.trakt", b"c", b"{}", {}, f"m{n}")


class FakeRelay:
    """Records the order of publishes; fails the publishes it is told to."""

    def __init__(self, fail_batches: int = 0) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.fail_batches = fail_batches
        self.gate = asyncio.Event()
        self.gate.set()

    async def publish_written(self, written: dict[int, OutboxMessage]) -> int:
        await self.gate.wait()
        self.calls.append(("publish", sorted(written)))
        if self.fail_batches:
            self.fail_batches -= 1
            raise ConnectionError("broker down")
        return len(written)

    async def recover(self, **_: Any) -> int:
        self.calls.append(("recover", []))
        return 0


def ingestor(relay: FakeRelay) -> Ingestor:
    topics = WorkTopics("playback.events.dlq", "scrobble.")
    return Ingestor(
        cast(Any, None), ConnectionCache(), cast(OutboxRelay, relay), topics, timedelta(hours=1)
    )


async def test_each_batch_waits_for_the_previous_publish() -> None:
    relay = FakeRelay()
    subject = ingestor(relay)
    relay.gate.clear()
    await subject.publish_in_order({1: message(1)})
    waiting = asyncio.create_task(subject.publish_in_order({2: message(2)}))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "batch 2 went ahead while batch 1 was still in flight"
    relay.gate.set()
    await waiting
    await subject.drain()
    assert relay.calls == [("publish", [1]), ("publish", [2])]


async def test_a_failed_publish_is_recovered_before_the_next_batch_goes_out() -> None:
    relay = FakeRelay(fail_batches=1)
    subject = ingestor(relay)
    await subject.publish_in_order({1: message(1)})
    await subject.publish_in_order({2: message(2)})
    # Batch 2's rows are left to recovery, which publishes everything in outbox order.
    assert relay.calls == [("publish", [1]), ("recover", [])]
    await subject.publish_in_order({3: message(3)})
    await subject.drain()
    assert relay.calls[-1] == ("publish", [3])


async def test_recovery_failing_again_raises_so_the_batch_is_rewound() -> None:
    relay = FakeRelay(fail_batches=1)

    async def still_down(**_: Any) -> int:
        raise ConnectionError("broker still down")

    relay.recover = still_down  # type: ignore[method-assign]
    subject = ingestor(relay)
    await subject.publish_in_order({1: message(1)})
    with pytest.raises(ConnectionError):
        await subject.publish_in_order({2: message(2)})
    with pytest.raises(ConnectionError):  # still owed: the next batch tries recovery again
        await subject.publish_in_order({})
