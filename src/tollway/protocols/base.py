"""What an API protocol is: one wire format, translated to and from the hub.

The gateway speaks three chat protocols, inbound and upstream: OpenAI's chat
completions, Anthropic's Messages API and Gemini's generateContent. OpenAI
chat completions is the hub: a call that arrives in one protocol and goes out
in another is translated to the hub and from it (two small steps instead of
a translation per pair). A call whose two sides speak the same protocol is
passed through, only read for its usage.

The hub's objects are plain dicts in OpenAI's shapes:

- a request: a ``POST /v1/chat/completions`` body (``model``, ``messages``,
  ``max_tokens``, ``tools``, ``stream`` ...);
- an answer: a ``chat.completion`` object (``choices[].message``,
  ``finish_reason``, ``usage``);
- a stream: ``chat.completion.chunk`` objects (``choices[].delta``), in order.
  Readers never put usage into hub chunks: they report it as ``Usage`` on
  the reader, and writers get it when the stream ends.

Codecs never price, charge or send anything; their only output to billing is
``Usage``.
"""

from __future__ import annotations

from typing import Any, Protocol

from tollway.errors import ApiError
from tollway.types import Usage

Json = dict[str, Any]


class HubReader(Protocol):
    """An upstream's stream in its own protocol, read as hub chunks."""

    usage: Usage | None  # the latest usage the stream reported (cumulative, never summed)
    done: bool  # the stream ended as its protocol ends a complete answer

    def feed(self, data: bytes) -> list[Json]:
        """Take bytes as they arrive (any split); return the hub chunks they complete.

        Raises ``StreamFailed`` when the upstream sends an error event after
        its 200 (Anthropic's ``error`` event)."""
        ...


class HubWriter(Protocol):
    """A client's stream in its own protocol, written from hub chunks."""

    def write(self, chunk: Json) -> bytes:
        """The bytes one hub chunk becomes (possibly none, possibly several events)."""
        ...

    def finish(self, usage: Usage | None) -> bytes:
        """The closing bytes of a stream that ended complete, carrying its usage."""
        ...

    def fail(self, error: ApiError) -> bytes:
        """The bytes that tell the client the stream broke (its protocol's error event)."""
        ...


class StreamFailed(Exception):
    """An upstream stream reported an error after its 200."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class Codec(Protocol):
    """One chat API's wire format and its translation to and from the hub."""

    name: str  # "openai", "anthropic", "gemini": what a channel type speaks

    # requests
    def request_to_hub(self, payload: Json) -> Json:
        """A client's request body as a hub request; ApiError (400) when it is
        not a valid request of this protocol."""
        ...

    def request_from_hub(self, hub: Json) -> Json:
        """The body to send upstream for a hub request (``hub["model"]`` is the
        upstream's model id; streaming is the caller's business)."""
        ...

    # whole answers
    def answer_to_hub(self, answer: Json) -> Json:
        """An upstream answer of this protocol as a hub ``chat.completion``."""
        ...

    def answer_from_hub(self, hub: Json, usage: Usage | None) -> Json:
        """The answer a client of this protocol gets for a hub answer."""
        ...

    def usage(self, answer: Json) -> Usage | None:
        """The usage an answer of this protocol reports (None: none, or garbage)."""
        ...

    # streams
    def reader(self) -> HubReader:
        """A reader of this protocol's stream."""
        ...

    def writer(self, hub: Json) -> HubWriter:
        """A writer of this protocol's stream for the hub request ``hub``."""
        ...

    # errors
    def error_body(self, error: ApiError) -> bytes:
        """An error as a client of this protocol expects it (the status is ``error.status``)."""
        ...

    def failure(self, status: int, data: bytes) -> ApiError:
        """What an upstream of this protocol's error answer means to any client."""
        ...
