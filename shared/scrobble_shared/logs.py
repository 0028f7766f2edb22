"""Log lines for people and for machines: one JSON object per line (``LOG_FORMAT=json``,
the default when stderr is not a terminal) or plain text, each carrying the ids of what is
being handled (``request_id`` in the gateway, ``batch`` in ingest, ``scrobble_id`` and
``connection_id`` in the dispatcher) from a context variable, so every line a request or a
piece of work causes can be found by one id.

No token ever goes through here: callers log ids and reasons, never credentials.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, TextIO

# Pairs, not a dict: a context variable's default must not be mutable.
_CONTEXT: Final[contextvars.ContextVar[tuple[tuple[str, str], ...]]] = contextvars.ContextVar(
    "scrobble_log_context", default=()
)
FORMATS: Final = ("json", "text")


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the block (and tasks it starts)."""
    merged = {**dict(_CONTEXT.get()), **{k: str(v) for k, v in fields.items()}}
    token = _CONTEXT.set(tuple(merged.items()))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


_RECORD_FIELD: Final = "scrobble_context"


def _with_context(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        setattr(record, _RECORD_FIELD, _CONTEXT.get())
        return record

    make.scrobble_context = True  # type: ignore[attr-defined]
    return make


def _install_record_factory() -> None:
    """Records take the bound ids when they are made, so a line formatted later (by a
    queue handler, or a test's capture) still carries the ids of where it was written."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "scrobble_context", False):
        logging.setLogRecordFactory(_with_context(current))


def ids_of(record: logging.LogRecord) -> dict[str, str]:
    return dict(getattr(record, _RECORD_FIELD, ()))


_install_record_factory()


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <bound ids>, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **ids_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = ids_of(record)
        return f"{text} [{' '.join(f'{k}={v}' for k, v in ids.items())}]" if ids else text


def chosen_format(stream: TextIO, env: dict[str, str] | None = None) -> str:
    wanted = (env if env is not None else os.environ).get("LOG_FORMAT", "").strip().lower()
    if wanted in FORMATS:
        return wanted
    return "text" if stream.isatty() else "json"


def configure(level: int = logging.INFO, stream: TextIO | None = None) -> str:
    """Root logging for a ``scrobble`` process; returns the format chosen."""
    out = stream or sys.stderr
    fmt = chosen_format(out)
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, quieter in QUIETER.items():  # DEBUG shows them all
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(level, quieter))
    return fmt


# Libraries whose INFO lines are one per request: httpx logs every call's full URL (query
# strings included, where an import's API key travels) and cost the dispatcher a line of
# JSON per call. Request counts and durations are in the metrics instead.
QUIETER: Final = {"httpx": logging.WARNING}


def adopt(name: str) -> None:
    """Send a library logger that brought its own handler (FastStream's) through ours."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = True
