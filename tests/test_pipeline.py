"""The metered-call pipeline above the transport seam: the gateway runs for
real (its server, database and ledger), and the upstream answers in-process
through a MockTransport, so each test says exactly what the upstream does."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from tollway import relay
from tollway.providers import PROVIDERS
from tollway.transport import MockAnswer, MockTransport, UpstreamRequest
from tollway.types import Model

from conftest import Served, customer, serve, test_settings, usage_records

CHAT_USAGE = {"prompt_tokens": 10, "completion_tokens": 5}


def chat_answer(usage: dict[str, Any] | None = CHAT_USAGE) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


@contextlib.asynccontextmanager
async def gateway(
    database_url: str, models: list[Model], handler: Callable[[UpstreamRequest], Any]
) -> AsyncIterator[tuple[Served, MockTransport]]:
    """The real gateway with one channel, whose upstream is ``handler``."""
    transport = MockTransport(handler)
    async with serve(test_settings(database_url), models, transport) as served:
        channel = {"name": "up", "type": "openai", "base_url": "http://up.test/v1"}
        got = await served.admin.post(
            "/api/channels", json={**channel, "api_key": "k1", "models": ["*"]}
        )
        assert got.status_code == 201, got.text
        yield served, transport


async def chat(served: Served, key: str, **fields: Any) -> Any:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **fields}
    async with served.client(key) as c:
        return await c.post("/v1/chat/completions", json=body)


async def test_a_call_goes_through_the_provider_and_is_billed_by_the_usage_it_reports(
    database_url: str, catalog_models: list[Model]
) -> None:
    async with gateway(database_url, catalog_models, lambda r: MockAnswer.json(chat_answer())) as (
        served,
        transport,
    ):
        mkey, key = await customer(served, "1")
        got = await chat(served, key, model="gpt-4o-mini")
        assert got.status_code == 200 and got.json()["choices"][0]["message"]["content"] == "hi"
        [sent] = transport.requests
        assert sent.url == "http://up.test/v1/chat/completions"
        assert sent.headers["Authorization"] == "Bearer k1"
        # gpt-4o-mini: $0.15 / 1M in, $0.60 / 1M out
        assert got.headers["x-tollway-cost-usd"] == "0.0000045"
        [record] = await usage_records(served, mkey)
        assert record["request_id"] == got.headers["x-request-id"]
        assert record["cost_usd"] == "0.0000045" and record["status"] == "ok"


async def test_an_alias_is_sent_upstream_as_the_model_id(
    database_url: str, catalog_models: list[Model]
) -> None:
    aliased = next(m for m in catalog_models if m.aliases and m.kind.value == "text")
    async with gateway(database_url, catalog_models, lambda r: MockAnswer.json(chat_answer())) as (
        served,
        transport,
    ):
        _, key = await customer(served, "5")
        got = await chat(served, key, model=aliased.aliases[0])
        assert got.status_code == 200, got.text
        assert orjson.loads(transport.requests[0].body)["model"] == aliased.id


@pytest.mark.parametrize(
    ("upstream_status", "client_status", "code"),
    [
        (400, 400, "upstream_rejected_request"),
        (429, 429, "rate_limit_exceeded"),
        (401, 502, "upstream_error"),
        (500, 502, "upstream_error"),
    ],
)
async def test_upstream_errors_are_mapped_by_the_provider_and_release_the_hold(
    database_url: str,
    catalog_models: list[Model],
    upstream_status: int,
    client_status: int,
    code: str,
) -> None:
    error = b'{"error":{"message":"no","type":"x"}}'
    async with gateway(
        database_url, catalog_models, lambda r: MockAnswer.json(error, upstream_status)
    ) as (served, _):
        mkey, key = await customer(served, "1")
        got = await chat(served, key)
        assert got.status_code == client_status and got.json()["error"]["code"] == code
        [record] = await usage_records(served, mkey)
        assert record["status"] == "upstream_error" and record["cost_usd"] == "0"
        assert await served.balance_usd(mkey) == "1"


async def test_a_stream_breaking_mid_way_is_billed_for_what_was_generated(
    database_url: str, catalog_models: list[Model]
) -> None:
    chunk = (
        b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"content":"hello"},"finish_reason":null}]}\n\n'
    )

    def handler(request: UpstreamRequest) -> MockAnswer:
        assert orjson.loads(request.body)["stream_options"] == {"include_usage": True}
        return MockAnswer(200, (chunk, ConnectionResetError("upstream went away")))

    async with gateway(database_url, catalog_models, handler) as (served, _):
        mkey, key = await customer(served, "1")
        async with served.client(key) as c:
            body = {
                "model": "gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
            got = await c.post("/v1/chat/completions", json=body)
        assert got.status_code == 200
        assert b"hello" in got.content and b"upstream_interrupted" in got.content
        [record] = await usage_records(served, mkey)
        assert record["status"] == "upstream_interrupted"
        assert record["tokens"]["output_tokens"] == 1  # "hello", counted by the gateway
        assert record["usage_source"] == "estimated"


async def test_an_error_event_mid_stream_reaches_the_client_alone_after_the_settlement(
    database_url: str, catalog_models: list[Model]
) -> None:
    """An OpenAI-compatible upstream that reports an error mid-stream: the
    client gets the upstream's own error event (not a second one of the
    gateway's), and the call is already settled when it does."""
    chunk = (
        b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"content":"hello"},"finish_reason":null}]}\n\n'
    )
    error = b'data: {"error":{"message":"model overloaded","type":"server_error"}}\n\n'

    def handler(request: UpstreamRequest) -> MockAnswer:
        return MockAnswer(200, (chunk, error))

    async with gateway(database_url, catalog_models, handler) as (served, _):
        mkey, key = await customer(served, "1")
        body = {"model": "gpt-4o-mini", "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
        async with (
            served.client(key) as c,
            c.stream("POST", "/v1/chat/completions", json=body) as got,
        ):
            received = b""
            async for piece in got.aiter_bytes():
                received += piece
                if b"model overloaded" in received:
                    records = await usage_records(served, mkey)  # settled before this arrived
        assert received.endswith(error) and b"upstream_interrupted" not in received
        [record] = records
        assert record["status"] == "upstream_interrupted"
        assert record["tokens"]["output_tokens"] == 1


async def test_a_bug_answers_an_openai_shaped_500_naming_the_request_and_gives_the_hold_back(
    database_url: str, catalog_models: list[Model], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = PROVIDERS["openai"]

    def broken(call: Any, data: bytes) -> Any:
        raise RuntimeError("a bug in the provider")

    monkeypatch.setattr(provider, "answer", broken)
    async with gateway(database_url, catalog_models, lambda r: MockAnswer.json(chat_answer())) as (
        served,
        _,
    ):
        mkey, key = await customer(served, "1")
        got = await chat(served, key)
        assert got.status_code == 500
        error = got.json()["error"]
        assert error["code"] == "internal_error" and error["type"] == "server_error"
        request_id = got.headers["x-request-id"]
        assert request_id in error["message"]
        [record] = await usage_records(served, mkey)  # the hold was given back
        assert record["request_id"] == request_id and record["status"] == "gateway_error"
        assert await served.balance_usd(mkey) == "1"


def test_every_v1_endpoint_is_registered_once() -> None:
    listed = [(method, path) for method, path, *_ in relay.ENDPOINTS]
    assert len(set(listed)) == len(listed)
    fixed = set(relay.hot_endpoints())
    routed = {(m, r.path) for r in relay.routes() for m in (r.methods or set()) - {"HEAD"}}
    assert fixed.isdisjoint(routed) and fixed | routed == set(listed)
