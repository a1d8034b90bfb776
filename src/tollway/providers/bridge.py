"""Answers and streams carried between the client's protocol and the upstream's.

When both sides speak the same protocol the upstream's bytes go to the client
as they are, only read for usage. Otherwise the upstream's answer is read
into the hub (OpenAI chat completions) and written in the client's protocol;
a stream chunk by chunk, as it arrives.
"""

from __future__ import annotations

import orjson

from tollway.errors import upstream_interrupted
from tollway.protocols import CODECS, Codec, HubReader, HubWriter, Json, StreamFailed
from tollway.protocols.tally import Tally
from tollway.providers.base import Answer, NotJson, Outbound
from tollway.types import Usage


def json_object(data: bytes) -> Json:
    """A 200 answer's JSON object; NotJson when it is not one."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise NotJson("upstream answered 200 with a body that is not JSON") from None
    if not isinstance(parsed, dict):
        raise NotJson("upstream answered 200 with JSON that is not an object")
    return parsed


def read_answer(upstream: Codec, call: Outbound, data: bytes) -> Answer:
    """The client's answer for an upstream's whole answer, with the hub's view
    of it (what choices and text it holds) and its usage."""
    parsed = json_object(data)
    usage = upstream.usage(parsed)
    hub = upstream.answer_to_hub(parsed)
    if call.client == upstream.name:
        return Answer(data, hub, usage)
    client = CODECS[call.client]
    return Answer(orjson.dumps(client.answer_from_hub(hub, usage)), hub, usage)


def scanner(upstream: Codec, call: Outbound) -> HubScanner:
    """The scanner of a stream from ``upstream`` to the call's client."""
    client = CODECS[call.client]
    hub = call.payload or {}
    return HubScanner(upstream.reader(), client.writer(hub), call.client == upstream.name)


class HubScanner:
    """A relayed stream read as hub chunks: passed on as it came (same
    protocol on both sides) or written anew in the client's protocol."""

    def __init__(self, reader: HubReader, writer: HubWriter, passthrough: bool) -> None:
        self.reader = reader
        self.writer = writer
        self.passthrough = passthrough
        self.failed = False
        self._finished = False
        self._tally = Tally()

    @property
    def usage(self) -> Usage | None:
        return self.reader.usage

    @property
    def done(self) -> bool:
        return self.reader.done and not self.failed

    def feed(self, chunk: bytes) -> bytes:
        if self.failed:
            return b""
        try:
            written = self._take(self.reader.feed(chunk))
        except StreamFailed as exc:
            self.failed = True
            return chunk if self.passthrough else self.writer.fail(exc.error)
        return chunk if self.passthrough else written

    def _take(self, chunks: list[Json]) -> bytes:
        out = []
        for hub_chunk in chunks:
            self._tally.take(hub_chunk.get("choices"))
            if not self.passthrough:
                out.append(self.writer.write(hub_chunk))
        if self.reader.done and not self._finished:
            self._finished = True
            if not self.passthrough:
                out.append(self.writer.finish(self.reader.usage))
        return b"".join(out)

    def output_text(self) -> str:
        return self._tally.text()

    def delivered_choices(self) -> int:
        return self._tally.delivered()

    def interrupted(self) -> bytes:
        return b"" if self.failed else self.writer.fail(upstream_interrupted())
