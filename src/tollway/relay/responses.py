"""POST /v1/responses: OpenAI's Responses API, for every chat model.

The body is read in the Responses protocol and translated to the hub
(OpenAI chat completions); from there the call is a chat call like
``/v1/chat/completions`` (same hold, bill, failover, billing modes and
limits), answered in Responses shapes. An OpenAI channel is sent the body as
the client wrote it (to ``{base_url}/responses``, with ``store: false``); an
OpenAI-compatible upstream without that endpoint (it answers 404) is sent the
hub request to ``chat/completions`` on the same channel instead, and its
answer translated. Anthropic and Gemini channels get the hub's translation.

Ids and storage are the gateway's: every response gets the gateway's id
(``resp_`` and 32 hex digits) in its body and in every stream event, and
with ``store`` (the default) is kept for its account (relay/responses_store.py).
``previous_response_id`` is expanded here, from the account's own stored
responses, into the conversation the upstream is sent: it works on every
channel, and no upstream ever sees an id to look up.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.shapes import CallShape, chat_shape
from tollway.endpoints import RESPONSES as RESPONSES_ENDPOINT
from tollway.errors import ApiError, bad_request, upstream_interrupted
from tollway.gateway import Gateway
from tollway.protocols import CODECS, Json
from tollway.protocols.responses import item_type, native_only, sent_natively
from tollway.providers import Answer, Outbound, StreamScanner
from tollway.relay.forward import MeteredStream, forward_unary, refused, released_on_failure
from tollway.relay.inbound import read_json
from tollway.relay.messages import written
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.relay.responses_store import ChainTooLong, ResponseStore, StoredResponse
from tollway.state import Channel, TokenInfo
from tollway.timeutil import utcnow
from tollway.transport import UpstreamAnswer
from tollway.types import Usage

log = logging.getLogger(__name__)

PROTOCOL = "responses"
CODEC = CODECS[PROTOCOL]
OPENAI_TYPE = "openai"
CHAT_PATH = "chat/completions"  # where a channel without /responses is sent the call
JSON_TYPE = "application/json"
# The request's fields a response object repeats (the rest are the answer's).
ECHOED = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "reasoning",
    "service_tier",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
)
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
ITEM_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


@dataclasses.dataclass(slots=True)
class Asked:
    """What the client asked for, kept for its answer and its storage."""

    id: str  # the gateway's id of the response
    request: Json  # the body as the client sent it
    input_items: list[Json]  # the request's own input as items, each with an id
    native_only: list[str]  # what only a Responses upstream can carry
    store: bool
    previous_response_id: str | None
    account_id: int
    token_id: int | None


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def store_of(request: Request) -> ResponseStore:
    """The app's store of responses (made on first use)."""
    state = request.app.state
    store: ResponseStore | None = getattr(state, "response_store", None)
    if store is None:
        store = ResponseStore(state.gateway)
        state.response_store = store
    return store


# -- POST /v1/responses --------------------------------------------------------


async def read_responses(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    payload, _ = await read_json(request, gw.settings.max_body_bytes)
    hub = CODEC.request_to_hub(payload)  # checks every field first
    previous = payload.get("previous_response_id")
    own = own_items(payload.get("input"))
    history = await _history(store_of(request), token, previous) if previous else []
    expanded = {key: value for key, value in payload.items() if key != "previous_response_id"}
    if history:
        expanded["input"] = history + [sendable(item) for item in own]
        hub = CODEC.request_to_hub(expanded)
    native = sent_natively(expanded)
    asked = Asked(
        id=new_response_id(),
        request=payload,
        input_items=own,
        native_only=native_only(expanded),
        store=payload.get("store") is not False,
        previous_response_id=previous,
        account_id=token.account_id,
        token_id=token.id,
    )
    written(native)  # a Responses upstream is sent it as it is
    return Inbound(hub, written(hub), asked, protocol=PROTOCOL, native=native)


async def _history(store: ResponseStore, token: TokenInfo, previous: str) -> list[Json]:
    """The conversation ``previous`` ends, as items an upstream can be sent."""
    try:
        items = await store.conversation(token.account_id, previous)
    except ChainTooLong:
        raise bad_request(
            "The conversation of 'previous_response_id' is too long to continue here.",
            param="previous_response_id",
        ) from None
    if items is None:
        raise ApiError(
            400,
            f"Previous response with id '{previous}' not found.",
            "previous_response_not_found",
            param="previous_response_id",
        )
    return [sendable(item) for item in items if item_type(item) != "reasoning"]


def own_items(items: Any) -> list[Json]:
    """A request's input as the items GET .../input_items lists, each with an id."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [{"role": "user", "content": [{"type": "input_text", "text": items}]}]
    own = []
    for item in items:
        kind = item_type(item)
        stored = {"type": kind, **item}
        if not isinstance(stored.get("id"), str):
            stored["id"] = f"{ITEM_PREFIXES.get(kind, 'item')}_{uuid.uuid4().hex}"
        if kind == "message" and isinstance(stored.get("content"), str):
            text_type = "output_text" if stored.get("role") == "assistant" else "input_text"
            stored["content"] = [{"type": text_type, "text": stored["content"]}]
        stored.setdefault("status", "completed")
        own.append(stored)
    return own


def sendable(item: Json) -> Json:
    """A stored item as an upstream takes it back without storage: no item
    ids (no upstream knows the gateway's), an assistant message's text as text."""
    item = {key: value for key, value in item.items() if key not in ("id", "status")}
    content = item.get("content")
    if (
        item_type(item) == "message"
        and item.get("role") == "assistant"
        and isinstance(content, list)
    ):
        item["content"] = "".join(
            str(part.get("text") or part.get("refusal") or "")
            for part in content
            if isinstance(part, dict)
        )
    return item


def native_channels(inbound: Inbound, candidates: Sequence[Channel]) -> Sequence[Channel]:
    """Every candidate, unless the request holds what only a Responses
    upstream can carry: then the OpenAI channels, or a 400 when there are none."""
    asked: Asked = inbound.source
    if not asked.native_only:
        return candidates
    found = [c for c in candidates if c.type == OPENAI_TYPE]
    if found:
        return found
    raise bad_request(
        f"This request holds what only OpenAI's Responses API can take: "
        f"{', '.join(asked.native_only)}; the model is served here by no OpenAI upstream. "
        "Send it without them, or call a model served by OpenAI.",
        param=asked.native_only[0].split(" ", 1)[0],
    )


def _shape(inbound: Inbound, model: Any) -> CallShape:
    # The larger of the two bodies bounds the prompt, whichever is sent.
    native_bytes = len(orjson.dumps(inbound.native)) if inbound.native is not None else 0
    return chat_shape(inbound.payload, max(len(inbound.body), native_bytes))


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response | MeteredStream:
    asked: Asked = inbound.source
    store = store_of(request)
    gw = call.gw
    hub = inbound.payload

    def prompt_tokens() -> int:
        return gw.counter.count_chat_prompt(hub)

    if not hub.get("stream", False):
        return await _unary(call, call.outbound(inbound), asked, store, prompt_tokens)
    outbound = call.outbound(inbound, stream=True)
    async with released_on_failure(call):
        upstream, outbound = await _send(call, outbound, asked)
    if upstream.status != 200:
        await refused(call, upstream)
    scanner = Stamped(call.provider.scanner(outbound), lambda kind, r: _seen(kind, r, asked, store))
    return MeteredStream(
        call,
        upstream,
        scanner,
        estimate=lambda text: Usage(
            input_tokens=prompt_tokens(), output_tokens=gw.counter.count(text)
        ),
        items=1,
    )


async def _send(call: Call, outbound: Outbound, asked: Asked) -> tuple[UpstreamAnswer, Outbound]:
    """Send natively; an OpenAI-type channel that has no /responses (404) is
    sent the hub request on its chat completions, and the channels after it
    the same way."""
    answer = await call.send(outbound)
    if answer.status != 404 or not _may_fall_back(call, outbound, asked):
        return answer, outbound
    answer.close()
    log.info("channel %s has no /responses: its chat completions serve the call", call.channel.id)
    channels = call.route.channels
    call.route = dataclasses.replace(call.route, channels=channels[channels.index(call.channel) :])
    fallback = dataclasses.replace(outbound, native=None, path=CHAT_PATH)
    return await call.send(fallback), fallback


def _may_fall_back(call: Call, outbound: Outbound, asked: Asked) -> bool:
    return (
        call.channel.type == OPENAI_TYPE and outbound.native is not None and not asked.native_only
    )


async def _unary(
    call: Call,
    outbound: Outbound,
    asked: Asked,
    store: ResponseStore,
    prompt_tokens: Callable[[], int],
) -> Response:
    def answered(answer: Answer) -> Answer:
        response = orjson.loads(answer.body)  # a JSON object: the provider read it
        stamp(response, asked)
        _keep(response, asked, store)
        return Answer(orjson.dumps(response), response, answer.usage)

    def estimate(response: Json) -> Usage:
        output_tokens = call.gw.counter.count(_output_text(response))
        return Usage(input_tokens=prompt_tokens(), output_tokens=output_tokens)

    return await forward_unary(
        call,
        outbound,
        items=lambda response: 1,
        estimate=estimate,
        send=lambda sent: _send(call, sent, asked),
        answered=answered,
    )


def stamp(response: Json, asked: Asked) -> None:
    """The response as its client sees it: the gateway's id, and the
    request's own fields (the upstream was sent store false and no previous id)."""
    response["id"] = asked.id
    response["previous_response_id"] = asked.previous_response_id
    response["store"] = asked.store
    for name in ECHOED:
        if asked.request.get(name) is not None:
            response[name] = asked.request[name]


def _seen(kind: str, response: Json, asked: Asked, store: ResponseStore) -> None:
    stamp(response, asked)
    if kind in TERMINAL:
        _keep(response, asked, store)


def _keep(response: Json, asked: Asked, store: ResponseStore) -> None:
    if not asked.store:
        return
    model = response.get("model")
    store.save_later(
        StoredResponse(
            id=asked.id,
            account_id=asked.account_id,
            token_id=asked.token_id,
            model=model if isinstance(model, str) else "",
            created_at=utcnow(),
            previous_response_id=asked.previous_response_id,
            input_items=asked.input_items,
            response=response,
        )
    )


def _output_text(response: Json) -> str:
    texts = []
    output = response.get("output")
    for item in output if isinstance(output, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "".join(texts)


class Stamped:
    """A Responses stream's scanner whose every ``response`` object is
    stamped (the gateway's id, the request's fields) before the client sees
    it; the terminal event's response is kept (``seen``). A stream the
    upstream broke off ends with ``response.failed``, numbered on from the
    last event the client got, whichever side wrote the events."""

    def __init__(self, inner: StreamScanner, seen: Callable[[str, Json], None]) -> None:
        self.inner = inner
        self.seen = seen
        self._pending = b""
        self._sequence = -1  # the last sequence_number the client got
        self._response: Json | None = None  # the latest response object it got

    @property
    def usage(self) -> Usage | None:
        return self.inner.usage

    @property
    def done(self) -> bool:
        return self.inner.done

    @property
    def failed(self) -> bool:
        return self.inner.failed

    def feed(self, chunk: bytes) -> bytes:
        return self._events(self.inner.feed(chunk))

    def output_text(self) -> str:
        return self.inner.output_text()

    def delivered_choices(self) -> int:
        return self.inner.delivered_choices()

    def interrupted(self) -> bytes:
        if self.inner.failed or self._response is None:
            return self._events(self.inner.interrupted())
        error = upstream_interrupted()
        response = {
            **self._response,
            "status": "failed",
            "error": {"code": error.code, "message": error.message},
        }
        self.seen("response.failed", response)
        event = {
            "type": "response.failed",
            "sequence_number": self._sequence + 1,
            "response": response,
        }
        return b"event: response.failed\ndata: " + orjson.dumps(event) + b"\n\n"

    def _events(self, data: bytes) -> bytes:
        if not data:
            return b""
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        self._pending += data
        if b"\n\n" not in self._pending:
            return b""
        *blocks, self._pending = self._pending.split(b"\n\n")
        return b"".join(self._block(block) + b"\n\n" for block in blocks if block)

    def _block(self, block: bytes) -> bytes:
        lines = block.split(b"\n")
        data = b"\n".join(line[5:].lstrip() for line in lines if line.startswith(b"data:"))
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return block
        if not isinstance(event, dict):
            return block
        sequence = event.get("sequence_number")
        if isinstance(sequence, int) and not isinstance(sequence, bool):
            self._sequence = max(self._sequence, sequence)
        response, kind = event.get("response"), event.get("type")
        if not isinstance(response, dict) or not isinstance(kind, str):
            return block
        self.seen(kind, response)
        self._response = response
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event)


RESPONSES = Metered(
    RESPONSES_ENDPOINT, "responses", _shape, _forward, read_responses, narrow=native_channels
)


async def create_response(request: Request) -> Response | MeteredStream:
    result: Response | MeteredStream = await run(RESPONSES, request)
    return result
