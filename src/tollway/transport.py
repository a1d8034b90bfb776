"""The seam between the relay and the network: one request in, one answer out.

``UpstreamPool`` (upstream.py) is the real transport; ``MockTransport`` answers
from a function in the same process, so the relay above it can be tested
without a network (as httpx's ``MockTransport``). Both hand back an answer
with the status at once and the body whole or chunk by chunk.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What a provider asks the transport to send."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""


class UpstreamAnswer(Protocol):
    status: int

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive)."""
        ...

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None:
        """Done with the answer (read or not): stops an upstream still sending."""
        ...


class Transport(Protocol):
    def send(self, request: UpstreamRequest, timeout_s: float) -> Awaitable[UpstreamAnswer]:
        """Send; the answer comes back once its status and headers are in."""
        ...

    async def close(self) -> None: ...


@dataclass
class MockAnswer:
    """An answer made in-process: its body as the chunks it arrives in."""

    status: int = 200
    chunks: Sequence[bytes | BaseException] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    closed: bool = False

    @classmethod
    def json(cls, body: bytes, status: int = 200) -> MockAnswer:
        return cls(status, (body,), {"content-type": "application/json"})

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.closed:
                return
            if isinstance(chunk, BaseException):  # a test's way to break a stream
                raise chunk
            yield chunk

    def close(self) -> None:
        self.closed = True


Handler = Callable[[UpstreamRequest], MockAnswer | Awaitable[MockAnswer]]


class MockTransport:
    """A transport that answers each request with ``handler(request)`` and
    keeps the requests it was sent, for tests to look at."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[UpstreamRequest] = []

    async def send(self, request: UpstreamRequest, timeout_s: float) -> UpstreamAnswer:
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    async def close(self) -> None:
        return None
