"""What a provider is: the one interface between the relay and an upstream API.

A provider says which endpoints it serves, builds the upstream request from
the normalised call (``Outbound``), turns the upstream's answer, whole or
streamed, into the bytes the client gets plus the ``Usage`` it reports, and
maps the upstream's errors to the client's. It never prices or charges: its
only output to billing is ``Usage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tollway.errors import ApiError, upstream_interrupted
from tollway.transport import UpstreamRequest
from tollway.types import Usage

JSON = "application/json"
# What an OpenAI streaming client sees when the upstream stops mid-stream: an
# SSE error event (the OpenAI SDKs raise on it) instead of a stream that just ends.
INTERRUPTED = b"data: " + upstream_interrupted().body() + b"\n\n"


@dataclass(slots=True)  # not frozen: one is made per call, and frozen __init__ costs 3x
class Outbound:
    """A call as the gateway sends it on, whatever the upstream speaks
    (treat it as read-only: ``dataclasses.replace`` makes a changed copy).

    ``endpoint`` is the OpenAI-style endpoint the call is for (what a
    provider's ``endpoints`` lists); ``path`` the resource below the base URL
    when it names more (``videos/<id>/remix``).
    """

    endpoint: str  # "chat/completions", "embeddings", "images/generations", "videos"
    body: bytes = b""
    payload: dict[str, Any] | None = None  # the body parsed (for chat: the hub request)
    method: str = "POST"
    path: str | None = None
    content_type: str | None = JSON
    stream: bool = False
    # The protocol the client speaks ("openai", "anthropic", "gemini") and its
    # request as sent (model renamed), which an upstream of that protocol gets as is.
    client: str = "openai"
    native: dict[str, Any] | None = None
    # The beta features an Anthropic client named (``anthropic-beta``), passed
    # on when the upstream is Anthropic's too.
    anthropic_beta: str | None = None
    # The output tokens the hold allows a choice when the request names no
    # max_tokens: what an upstream that requires one is sent.
    held_output_tokens: int | None = None

    @property
    def resource(self) -> str:
        return self.path if self.path is not None else self.endpoint


class NotJson(ValueError):
    """An upstream answered 200 with a body that is not a JSON object."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An upstream's whole answer, for the client and for billing."""

    body: bytes  # what the client gets
    parsed: dict[str, Any]
    usage: Usage | None  # None: the upstream reported none


class StreamScanner(Protocol):
    """Reads a relayed stream as it passes: finds the usage, keeps what a
    count needs if none comes, and says which bytes the client gets."""

    @property
    def usage(self) -> Usage | None:
        """The latest usage the stream reported (None: none yet)."""
        ...

    @property
    def done(self) -> bool:
        """Whether the stream ended as a complete answer ends."""
        ...

    @property
    def failed(self) -> bool:
        """Whether the upstream reported an error after its 200 (the bytes
        ``feed`` just returned carry it to the client)."""
        ...

    def feed(self, chunk: bytes) -> bytes:
        """Take an upstream chunk; return the bytes to forward now."""
        ...

    def output_text(self) -> str:
        """The text generated so far (for counting when no usage came)."""
        ...

    def delivered_choices(self) -> int:
        """How many choices reached the client with something generated (or their end)."""
        ...

    def interrupted(self) -> bytes:
        """What the client gets last when the upstream stopped mid-stream: its
        protocol's error event (nothing if one was already passed on)."""
        ...


class Provider(Protocol):
    """An upstream API family, registered by channel type in providers/__init__.py."""

    endpoints: frozenset[str]

    def request(self, base_url: str, api_key: str, call: Outbound) -> UpstreamRequest:
        """The upstream request for ``call`` (for a stream, one that reports usage)."""
        ...

    def answer(self, call: Outbound, data: bytes) -> Answer:
        """A 200 answer read whole; NotJson when it cannot be read."""
        ...

    def scanner(self, call: Outbound) -> StreamScanner:
        """A reader of the stream ``request(call)`` opened."""
        ...

    def failure(self, status: int, data: bytes) -> ApiError:
        """What the client gets for an upstream's error answer."""
        ...
