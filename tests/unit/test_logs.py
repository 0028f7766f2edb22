"""Structured logs: one JSON object per line with the ids bound where the line was written."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from scrobble_shared import logs


@pytest.fixture
def captured() -> tuple[io.StringIO, logging.Logger]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return out, logger


def lines(out: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_carries_the_ids_bound_around_it(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    out, logger = captured
    with logs.bound(request_id="r-123"), logs.bound(scrobble_id="s-9"):
        logger.info("sent %s", "it")
    logger.info("outside")
    inside, outside = lines(out)
    assert inside["message"] == "sent it"
    assert inside["request_id"] == "r-123"
    assert inside["scrobble_id"] == "s-9"
    assert inside["level"] == "info"
    assert inside["logger"] == "test.logs"
    assert "request_id" not in outside


async def test_concurrent_tasks_keep_their_own_ids(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    out, logger = captured

    async def work(n: int) -> None:
        with logs.bound(scrobble_id=n):
            await asyncio.sleep(0.01 * (3 - n))
            logger.info("done %d", n)

    await asyncio.gather(*(work(n) for n in range(3)))
    assert {(line["message"], line["scrobble_id"]) for line in lines(out)} == {
        ("done 0", "0"),
        ("done 1", "1"),
        ("done 2", "2"),
    }


def test_exceptions_stay_inside_the_one_line(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    out, logger = captured
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = lines(out)
    assert "ValueError: boom" in line["exception"]


def test_format_from_the_environment_else_by_terminal() -> None:
    pipe = io.StringIO()
    assert logs.chosen_format(pipe, {"LOG_FORMAT": "text"}) == "text"
    assert logs.chosen_format(pipe, {"LOG_FORMAT": "JSON"}) == "json"
    assert logs.chosen_format(pipe, {}) == "json"  # not a terminal


def test_per_request_library_lines_are_left_out_but_their_warnings_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    saved = (root.handlers[:], root.level, httpx_logger.level)
    out = io.StringIO()
    try:
        logs.configure(stream=out)
        httpx_logger.info('HTTP Request: GET https://example.test/?api_key=k "HTTP/1.1 200 OK"')
        httpx_logger.warning("connection pool is full")
        logging.getLogger("scrobble_dispatcher").info("delivered")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        httpx_logger.setLevel(saved[2])
    assert [line["message"] for line in lines(out)] == ["connection pool is full", "delivered"]
