"""A lean Redis client for the limiter's two script calls: one asyncio
connection, commands pipelined on it (replies come back in order), replies
parsed by hiredis's C reader.

redis-py's asyncio client spent ~75 µs of the event loop's CPU on each
command (its pool, locks and connection layers): more than the rest of a
gateway call. This one does what the limiter needs — EVALSHA, loading a
script Redis does not know yet, AUTH and SELECT from the URL — and nothing
else. A connection that fails or times out is dropped whole (its pending
replies can no longer be matched to their calls) and the next command opens
a new one. Errors are OSError (ConnectionError, TimeoutError), as a socket's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis


class ReplyError(Exception):
    """An error Redis answered with (a script's own error, say)."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            future = self.waiting.popleft()
            if future.done():  # timed out: the connection is being dropped anyway
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ReplyError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("Redis closed the connection")
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"Redis connection lost: {self.lost!r}"))

    @property
    def usable(self) -> bool:
        """Open and not closing: a closing transport may take its time to
        report the loss (a write buffer it waits to flush), and meanwhile
        nothing sent on it is answered."""
        return self.lost is None and self.transport is not None and not self.transport.is_closing()

    def send(self, args: tuple[bytes | str | int, ...]) -> asyncio.Future[Any]:
        transport = self.transport
        if transport is None or not self.usable:
            raise ConnectionError("Redis connection closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        transport.write(_command(args))
        self.waiting.append(future)
        return future

    def abort(self) -> None:
        """Drop the connection now, unsent bytes and all (close() would wait
        to flush them to a peer that may be gone)."""
        if self.transport is not None:
            self.transport.abort()


def _command(args: tuple[bytes | str | int, ...]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class Script:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


class RespClient:
    def __init__(self, url: str, connect_timeout_s: float, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError(f"only redis:// URLs are supported, not {parts.scheme}://")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        self.db = int(parts.path.strip("/") or 0)
        self.connect_timeout_s, self.timeout_s = connect_timeout_s, timeout_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    async def run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA the script (loading it once if Redis does not know it)."""
        conn = await self._connection()
        call = (b"EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._reply(conn, call)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self._reply(conn, (b"SCRIPT", b"LOAD", script.text))
        return await self._reply(conn, call)

    async def run_raw(self, *args: bytes | str | int) -> Any:
        """Any command (tests and tools)."""
        return await self._reply(await self._connection(), args)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.abort()
            self._conn = None

    async def _reply(self, conn: _Connection, args: tuple[Any, ...]) -> Any:
        timer: asyncio.TimerHandle | None = None
        try:
            future = conn.send(args)
            timer = asyncio.get_running_loop().call_later(self.timeout_s, _expire, future)
            return await future
        except OSError:  # ConnectionError, TimeoutError: the connection is done for
            self._drop(conn)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _drop(self, conn: _Connection) -> None:
        conn.abort()
        if self._conn is conn:
            self._conn = None

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None:
            if conn.usable:
                return conn
            self._drop(conn)
        if self._connecting is None:  # one connect for every caller waiting on it
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        opened = loop.create_connection(_Connection, self.host, self.port)
        _, conn = await asyncio.wait_for(opened, self.connect_timeout_s)
        try:
            if self.password is not None:
                auth = (self.username, self.password) if self.username else (self.password,)
                await self._reply(conn, (b"AUTH", *auth))
            if self.db:
                await self._reply(conn, (b"SELECT", self.db))
        except BaseException:
            conn.abort()
            raise
        self._conn = conn
        return conn


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("Redis did not answer in time"))


__all__ = ["ReplyError", "RespClient", "Script"]
