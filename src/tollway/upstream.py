"""A small keep-alive HTTP/1.1 client for forwarding calls upstream.

Why not aiohttp (which Tollway used first): the gateway sends bytes it already
has and relays the answer's bytes as they come; it needs no cookies, redirects,
proxies, decompression or per-request objects, whose cost showed in profiles
under load (docs/benchmark.md). This client writes the request head and body
in one ``writelines`` on a pooled connection and parses the answer with
``httptools`` (the parser uvicorn uses; no HTTP parsing is written here).

What it does: keep-alive pools per (scheme, host, port), TLS, Content-Length
and chunked answers, flow control for streamed answers, an idle-read timeout,
and one retry when a reused connection turns out to have been closed by the
server before it answered (the keep-alive race).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from tollway.transport import UpstreamRequest

MAX_IDLE_PER_HOST = 512
# Stop reading from the upstream while this much of a streamed answer waits
# for the client, so a slow client cannot make the gateway buffer without end.
HIGH_WATER_BYTES = 1 << 20


class UpstreamError(Exception):
    """The upstream could not be reached or broke off."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    pass


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: bytes
    host_header: bytes

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = port == (443 if parts.scheme == "https" else 80)
    host = parts.hostname if default else f"{parts.hostname}:{port}"
    return Target(parts.scheme, parts.hostname, port, path.encode(), host.encode("idna"))


class Response:
    """An upstream answer: status at once, the body whole or chunk by chunk."""

    def __init__(self, conn: _Connection, status: int) -> None:
        self._conn = conn
        self.status = status
        self.headers: list[tuple[bytes, bytes]] = conn.headers
        self._closed = False

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), decoded."""
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    async def read(self) -> bytes:
        chunks = [chunk async for chunk in self.iter_chunks()]
        return b"".join(chunks)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            chunk = await conn.next_chunk()
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        """Done with the answer: reuse the connection if it was read to the end,
        else drop it (which also stops an upstream still sending)."""
        if not self._closed:
            self._closed = True
            self._conn.finish()


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.alive = True
        self.reused = False
        self.received = False
        self.complete = False
        self.status_waiter: asyncio.Future[int] | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.headers: list[tuple[bytes, bytes]] = []
        self.buffered = 0
        self.paused = False
        self.chunk_waiter: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        self.last_activity = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timeout = 0.0

    # asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not every socket is TCP
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.last_activity = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad HTTP from upstream: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if not self.complete:
            self._fail(UpstreamError(f"upstream closed the connection: {exc or 'EOF'}"))

    # httptools callbacks -------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.status_waiter is not None and not self.status_waiter.done():
            self.status_waiter.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER_BYTES and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._cancel_timer()
        if not self.parser.should_keep_alive():
            self.alive = False
        self._wake()

    # the request/response cycle ------------------------------------------
    def send(self, head: bytes, body: bytes, timeout: float) -> asyncio.Future[int]:
        assert self.transport is not None
        self.complete = self.received = False
        self.error = None
        self.chunks.clear()
        self.headers = []
        self.buffered = 0
        self.parser = httptools.HttpResponseParser(self)
        self.status_waiter = self.loop.create_future()
        self.timeout = timeout
        self.last_activity = self.loop.time()
        self.timer = self.loop.call_at(self.last_activity + timeout, self._check_timeout)
        self.transport.writelines((head, body))
        return self.status_waiter

    async def next_chunk(self) -> bytes | None:
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            self.chunk_waiter = self.loop.create_future()
            await self.chunk_waiter
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered <= HIGH_WATER_BYTES // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    def finish(self) -> None:
        self._cancel_timer()
        if self.complete and self.alive and not self.chunks and self.error is None:
            self.pool.put_back(self)
        else:
            self.abort()

    def abort(self) -> None:
        self.alive = False
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self.chunk_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.alive = False
        self._cancel_timer()
        if self.status_waiter is not None and not self.status_waiter.done():
            self.status_waiter.set_exception(exc)
        self._wake()

    def _check_timeout(self) -> None:
        """Fires at the deadline; if data came meanwhile, waits on from it."""
        idle = self.loop.time() - self.last_activity
        if idle < self.timeout:
            self.timer = self.loop.call_later(self.timeout - idle, self._check_timeout)
            return
        self._fail(UpstreamTimeout(f"no data from the upstream for {self.timeout:g} s"))
        if self.transport is not None:
            self.transport.close()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class UpstreamPool:
    """Keep-alive connections to every upstream, shared by all calls."""

    def __init__(self, connect_timeout_s: float = 10) -> None:
        self.loop = asyncio.get_running_loop()
        self.connect_timeout_s = connect_timeout_s
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, Target] = {}
        self._heads: dict[tuple[str, bytes, tuple[tuple[str, str], ...]], bytes] = {}
        self._ssl: ssl.SSLContext | None = None

    def send(self, request: UpstreamRequest, timeout_s: float) -> Awaitable[Response]:
        return self.request(request.method, request.url, request.headers, request.body, timeout_s)

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Response:
        """Send; returns once the status line and headers are in."""
        target = self._target(url)
        head = self._head(method, target, headers)
        if body or method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: %d\r\n" % len(body)
        head += b"\r\n"
        conn = await self._acquire(target)
        try:
            status = await conn.send(head, body, timeout_s)
        except UpstreamError:
            if not (conn.reused and not conn.received):
                raise
            conn = await self._connect(target)  # the keep-alive race: once more, fresh
            status = await conn.send(head, body, timeout_s)
        except asyncio.CancelledError:
            conn.abort()
            raise
        return Response(conn, status)

    def put_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) < MAX_IDLE_PER_HOST:
            conn.reused = True
            idle.append(conn)
        else:
            conn.abort()

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports close

    def _target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            target = parse_target(url)
            if len(self._targets) > 10_000:
                self._targets.clear()
            self._targets[url] = target
        return target

    def _head(self, method: str, target: Target, headers: Mapping[str, str]) -> bytes:
        key = (method, target.path + b"\0" + target.host_header, tuple(headers.items()))
        head = self._heads.get(key)
        if head is None:
            start = b"%s %s HTTP/1.1\r\nHost: %s\r\n"
            lines = [start % (method.encode(), target.path, target.host_header)]
            lines += [f"{name}: {value}\r\n".encode("latin-1") for name, value in headers.items()]
            head = b"".join(lines)
            if len(self._heads) > 10_000:
                self._heads.clear()
            self._heads[key] = head
        return head

    async def _acquire(self, target: Target) -> _Connection:
        idle = self._idle.get(target.key)
        while idle:
            conn = idle.pop()
            if conn.alive and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return await self._connect(target)

    async def _connect(self, target: Target) -> _Connection:
        ssl_context = self._ssl_context() if target.scheme == "https" else None
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Connection(self, target.key),
                    target.host,
                    target.port,
                    ssl=ssl_context,
                    server_hostname=target.host if ssl_context else None,
                ),
                self.connect_timeout_s,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"connecting to {target.host}:{target.port} timed out") from exc
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl
