"""GET /v1/models answers each SDK in its own list shape (Anthropic's pages by
after_id, Gemini's by pageToken), with only the models the token can call."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from google.genai import errors as gerrors

from tollway.endpoints import CHAT
from tollway.simulator import Simulator

from conftest import Served, customer, sdk
from native import claude, gateway, gemini

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)


async def chat_ids(served: Served, key: str) -> list[str]:
    """What the OpenAI list shows this key, restricted to chat models (the
    ones the Messages and generateContent APIs can call), in order."""
    kinds = {kind.value for kind in CHAT.kinds}
    models = (await served.admin.get("/api/models")).json()["data"]
    catalog = {m["id"]: m["kind"] for m in models}
    async with sdk(served, key) as client:
        listed = [model.id async for model in client.models.list()]
    return [model_id for model_id in listed if catalog[model_id] in kinds]


async def test_each_sdk_lists_the_callable_models_in_its_own_shape(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> None:
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        _, key = await customer(served)
        expected = await chat_ids(served, key)
        assert len(expected) > 20  # more than one page of each SDK's below
        _, per_call = await customer(served, billing_mode="pay_per_call")
        per_call_ids = await chat_ids(served, per_call)
        assert "claude-sonnet-4-5" not in per_call_ids  # sold per use only

        async with claude(served, key) as client:
            pages = await client.models.list(limit=7)
            listed = [model async for model in pages]
            assert [m.id for m in listed] == expected
            assert all(m.type == "model" and m.display_name for m in listed)
            first = await client.models.list(limit=7)
            assert first.has_more and first.last_id == expected[6]
            before = await client.models.list(before_id=expected[10], limit=3)
            assert [m.id for m in before.data] == expected[7:10]
            one = await client.models.retrieve(expected[0])
            assert one.id == expected[0]
        async with claude(served, per_call) as client:
            assert [m.id async for m in client.models.list()] == per_call_ids
            with pytest.raises(anthropic.NotFoundError):
                await client.models.retrieve("claude-sonnet-4-5")

        async with gemini(served, key).aio as client:
            found = [m async for m in await client.models.list(config={"page_size": 9})]
            assert [m.name for m in found] == [f"models/{i}" for i in expected]
            assert "generateContent" in (found[0].supported_actions or [])
            model = await client.models.get(model=expected[1])
            assert model.name == f"models/{expected[1]}"
        async with gemini(served, per_call).aio as client:
            with pytest.raises(gerrors.ClientError) as missing:
                await client.models.get(model="claude-sonnet-4-5")
            assert missing.value.code == 404


@pytest.mark.parametrize(
    ("headers", "query", "shape"),
    [
        ({"anthropic-version": "2023-06-01"}, {"limit": "0"}, "anthropic"),
        ({"anthropic-version": "2023-06-01"}, {"limit": "1001"}, "anthropic"),
        ({"anthropic-version": "2023-06-01"}, {"after_id": "no-such-model"}, "anthropic"),
        ({"x-goog-api-key": "-"}, {"pageSize": "-1"}, "gemini"),
        ({"x-goog-api-key": "-"}, {"pageToken": "x" * 5000}, "gemini"),
        ({}, {}, "openai"),
    ],
)
async def test_a_bad_list_query_or_key_gets_a_4xx_in_the_callers_shape(
    served: Served, headers: dict[str, str], query: dict[str, str], shape: str
) -> None:
    _, key = await customer(served)
    sent = {"Authorization": f"Bearer {key}", **headers}
    if shape == "openai":
        sent["Authorization"] = "Bearer sk-wrong"
    async with served.client(None) as c:
        got = await c.get("/v1/models", params=query, headers=sent)
    assert 400 <= got.status_code < 500, got.text
    body = got.json()
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    elif shape == "gemini":
        assert body["error"]["status"] == "INVALID_ARGUMENT"
    else:
        assert body["error"]["type"] == "authentication_error"
