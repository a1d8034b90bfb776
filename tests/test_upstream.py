"""The upstream HTTP client against raw loopback servers that misbehave on cue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tollway.upstream import UpstreamError, UpstreamPool, UpstreamTimeout, parse_target

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


def keep_alive(body: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    return handler


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    p = UpstreamPool(connect_timeout_s=2)
    yield p
    await p.close()


async def test_keep_alive_reuses_one_connection(pool: UpstreamPool) -> None:
    async with RawServer(keep_alive(b'{"ok":true}')) as server:
        for _ in range(5):
            resp = await pool.request("POST", server.url, {"Authorization": "Bearer k"}, b"{}", 5)
            assert (resp.status, await resp.read()) == (200, b'{"ok":true}')
            resp.close()
        assert server.connections == 1


async def test_request_head_and_body_are_sent_as_given(pool: UpstreamPool) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async with RawServer(handler) as server:
        resp = await pool.request("POST", server.url + "?a=1", {"X-Key": "v"}, b'{"model":"m"}', 5)
        assert resp.status == 204 and await resp.read() == b""
        resp.close()
    head, body = seen[0].split(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/x?a=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"X-Key: v" in head and b"Content-Length: 13" in head
    assert body == b'{"model":"m"}'


async def test_chunked_answer_streams_chunk_by_chunk(pool: UpstreamPool) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()

    async with RawServer(handler) as server:
        resp = await pool.request("POST", server.url, {}, b"{}", 5)
        chunks = resp.iter_chunks()
        assert await chunks.__anext__() == b"first"  # before the rest is even sent
        release.set()
        assert [c async for c in chunks] == [b"second"]
        resp.close()


async def test_server_closing_an_idle_connection_is_retried_fresh(pool: UpstreamPool) -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # then the server drops the kept-alive connection

    async with RawServer(one_then_close) as server:
        for _ in range(3):
            resp = await pool.request("POST", server.url, {}, b"{}", 5)
            assert await resp.read() == b"ok"
            resp.close()
            await asyncio.sleep(0.1)
        assert server.connections == 3


async def test_upstream_breaking_off_mid_body_is_an_error(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async with RawServer(handler) as server:
        resp = await pool.request("POST", server.url, {}, b"{}", 5)
        with pytest.raises(UpstreamError):
            await resp.read()
        resp.close()


async def test_silent_upstream_times_out(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with RawServer(handler) as server:
        with pytest.raises(UpstreamTimeout):
            await pool.request("POST", server.url, {}, b"{}", 0.2)


async def test_nothing_listening(pool: UpstreamPool) -> None:
    with pytest.raises(UpstreamError, match="cannot connect"):
        await pool.request("POST", "http://127.0.0.1:9/v1/x", {}, b"{}", 1)


async def test_closing_a_half_read_answer_drops_the_connection(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async with RawServer(handler) as server:
        resp = await pool.request("POST", server.url, {}, b"{}", 5)
        assert await resp.iter_chunks().__anext__() == b"abc"
        resp.close()  # the client went away: not reusable
        resp = await pool.request("POST", server.url, {}, b"{}", 5)
        resp.close()
        assert server.connections == 2


def test_parse_target() -> None:
    t = parse_target("https://api.example.com/v1/chat/completions?x=1")
    assert (t.scheme, t.host, t.port, t.path, t.host_header) == (
        "https",
        "api.example.com",
        443,
        b"/v1/chat/completions?x=1",
        b"api.example.com",
    )
    assert parse_target("http://h:8080/").host_header == b"h:8080"
    with pytest.raises(ValueError):
        parse_target("ftp://x/y")


async def test_get_with_headers_and_no_body(pool: UpstreamPool) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nX-Poll: 5\r\n"
            b"Content-Length: 4\r\n\r\nmp4!"
        )
        await writer.drain()

    async with RawServer(handler) as server:
        resp = await pool.request("GET", server.url, {"Authorization": "Bearer k"}, b"", 5)
        assert await resp.read() == b"mp4!"
        assert resp.header("content-type") == "video/mp4" and resp.header("x-poll") == "5"
        assert resp.header("missing") is None
        resp.close()
    assert seen[0].startswith(b"GET /v1/x HTTP/1.1\r\n")
    assert b"Content-Length" not in seen[0]
