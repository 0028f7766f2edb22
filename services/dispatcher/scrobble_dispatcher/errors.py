"""The dispatcher's errors, split in two.

Transient: the network, Postgres or Kafka away for a moment (connections refused or cut,
timeouts, a server shutting down or out of connections, a serialization conflict). The
dispatcher outlives them by trying again later: a consumer batch is rewound (nack) and
the consumer backs off, the poller leaves the rows to be taken again once their lease
runs out.

Anything else is permanent for the work it happened on: a bug, or data no code path
expects. That work ends dead with the error (``decide.unexpected_error``) and the batch
goes on, so one bad item cannot rewind its partition forever.
"""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaError

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # connections refused, reset, cut; also ConnectionError
    TimeoutError,
    asyncpg.InterfaceError,  # the connection is closed or was lost
    # "cannot switch to state N; another operation is in progress": a connection left
    # mid-operation when Postgres went away (seen in the chaos run after a kill -9, where
    # it made a Trakt scrobble dead); another connection does the work.
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # 40: serialization failure, deadlock
    KafkaError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same thing again later may well succeed."""
    return isinstance(exc, TRANSIENT)
