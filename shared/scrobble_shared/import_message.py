"""The message that starts a history import, on ``<prefix>imports`` (keyed by connection id):
one codec for its writer (the gateway's ``POST /import/{service}``) and its reader (the
dispatcher's import worker). Pure: no I/O.

The message only names the job; the ``import_jobs`` row is what the worker claims and
trusts, so a message that names no job (or a job that is gone) is skipped, never fatal.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Final

IMPORT_KIND: Final = "import"  # the ``kind`` header of the message


class NotAnImportMessage(ValueError):
    """The value names no import job."""


@dataclass(frozen=True)
class ImportMessage:
    job_id: uuid.UUID
    connection_id: uuid.UUID
    user_id: uuid.UUID
    service: str

    def encode(self) -> bytes:
        return json.dumps(
            {
                "job_id": str(self.job_id),
                "connection_id": str(self.connection_id),
                "user_id": str(self.user_id),
                "service": self.service,
            }
        ).encode()

    @property
    def key(self) -> bytes:
        return str(self.connection_id).encode()

    @property
    def message_id(self) -> str:
        return f"import:{self.job_id}"


def decode_job_id(value: bytes | None) -> uuid.UUID:
    """The job an imports message names; :class:`NotAnImportMessage` when it names none.
    Only the job id is read: older messages may lack the other fields."""
    try:
        found = json.loads(value or b"")
        return uuid.UUID(found["job_id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise NotAnImportMessage("the message names no import job") from None
