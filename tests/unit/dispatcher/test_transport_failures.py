"""transport.send against servers that do not answer properly: every way of getting no
usable HTTP answer is a TransportFailure (the dispatcher retries it later), never another
exception (which would end the work dead as unexpected)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from scrobble_dispatcher.transport import TransportFailure, new_client, send
from scrobble_sandbox import Sandbox
from scrobble_shared.trackers.http import HttpRequest

FAST_GIVE_UP = httpx.Timeout(0.3)


@pytest_asyncio.fixture(loop_scope="session")
async def impatient() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client(FAST_GIVE_UP) as client:
        yield client


def submit(sb: Sandbox) -> HttpRequest:
    return HttpRequest(
        "POST",
        f"{sb.env['LISTENBRAINZ_API_URL']}/submit-listens",
        headers={"Authorization": "Token not-checked-before-the-fault"},
        json={"listen_type": "playing_now", "payload": []},
    )


async def test_an_answer_slower_than_the_read_timeout_is_an_httpx_timeout_then_a_failure(
    sb: Sandbox, impatient: httpx.AsyncClient
) -> None:
    sb.listenbrainz.faults.slow(1500, path_prefix="/submit-listens")
    with pytest.raises(TransportFailure, match="calling") as caught:
        await send(impatient, submit(sb))
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


async def test_a_hung_service_is_a_failure(sb: Sandbox, impatient: httpx.AsyncClient) -> None:
    sb.listenbrainz.faults.hang(path_prefix="/submit-listens")
    with pytest.raises(TransportFailure) as caught:
        await send(impatient, submit(sb))
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_an_answer_broken_off_midway_is_a_failure(
    sb: Sandbox, impatient: httpx.AsyncClient
) -> None:
    sb.listenbrainz.faults.drop(path_prefix="/submit-listens")
    with pytest.raises(TransportFailure):
        await send(impatient, submit(sb))


async def test_a_refused_connection_is_a_failure_named_for_what_happened(
    impatient: httpx.AsyncClient,
) -> None:
    with pytest.raises(TransportFailure, match=r"^ClientConnectorError calling "):
        await send(impatient, HttpRequest("GET", "http://127.0.0.1:1/"))


@pytest.mark.parametrize(
    "answer",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["not-http", "bad-status", "bad-chunk", "huge-header"],
)
async def test_an_answer_that_is_not_http_is_a_failure(
    impatient: httpx.AsyncClient, answer: bytes
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransportFailure, match="calling"):
            await send(impatient, HttpRequest("GET", f"http://127.0.0.1:{port}/"))
    finally:
        server.close()
        await server.wait_closed()
