"""Errors reach each SDK in its own protocol's shape and status, with no
charge: a bad key, a billing-mode refusal, no funds, and an overloaded
upstream (Anthropic's 529, a 503 to the client)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as gerrors
from google.genai import types as gtypes

from tollway.simulator import Simulator

from conftest import Served, customer, sdk, usage_records
from native import claude, gateway, gemini

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

MODEL = "claude-sonnet-4-5"  # sold per use only
HELLO = "[sim:tokens=3] hello"


async def openai_error(served: Served, key: str, text: str) -> tuple[int, str, str]:
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": text}], max_tokens=20
            )
    body: Any = caught.value.body
    return caught.value.status_code, body["type"], body["message"]


async def anthropic_error(served: Served, key: str, text: str) -> tuple[int, str, str]:
    async with claude(served, key) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(
                model=MODEL, messages=[{"role": "user", "content": text}], max_tokens=20
            )
    body: Any = caught.value.body
    assert body["type"] == "error"
    return caught.value.status_code, body["error"]["type"], body["error"]["message"]


async def gemini_error(served: Served, key: str, text: str) -> tuple[int, str, str]:
    config = gtypes.GenerateContentConfig(max_output_tokens=20)
    async with gemini(served, key).aio as client:
        with pytest.raises(gerrors.APIError) as caught:
            await client.models.generate_content(model=MODEL, contents=text, config=config)
    error = caught.value
    return error.code, str(error.status), str(error.message)


Ask = Callable[[Served, str, str], Awaitable[tuple[int, str, str]]]
CLIENTS: dict[str, Ask] = {
    "openai": openai_error,
    "anthropic": anthropic_error,
    "gemini": gemini_error,
}
# (status, the error's type or status as each protocol names it)
EXPECTED = {
    "bad_key": {
        "openai": (401, "authentication_error"),
        "anthropic": (401, "authentication_error"),
        "gemini": (401, "UNAUTHENTICATED"),
    },
    "mode_refusal": {
        "openai": (403, "permission_error"),
        "anthropic": (403, "permission_error"),
        "gemini": (403, "PERMISSION_DENIED"),
    },
    "no_funds": {
        "openai": (402, "insufficient_quota"),
        "anthropic": (402, "billing_error"),
        "gemini": (402, "FAILED_PRECONDITION"),
    },
    "overloaded": {
        "openai": (503, "upstream_error"),
        "anthropic": (503, "overloaded_error"),
        "gemini": (503, "UNAVAILABLE"),
    },
}


@pytest.mark.parametrize("inbound", sorted(CLIENTS))
async def test_each_protocol_gets_its_own_error_shapes_and_pays_nothing(
    database_url: str, catalog_models: list[Any], simulator: Simulator, inbound: str
) -> None:
    ask = CLIENTS[inbound]
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        status, kind, _ = await ask(served, "sk-not-a-key", HELLO)
        assert (status, kind) == EXPECTED["bad_key"][inbound]

        mkey, key = await customer(served, billing_mode="pay_per_call")
        status, kind, message = await ask(served, key, HELLO)
        assert (status, kind) == EXPECTED["mode_refusal"][inbound]
        assert "billed per_use only" in message and "pay_per_use_priority" in message

        broke, key = await customer(served, credit="0")
        status, kind, message = await ask(served, key, HELLO)
        assert (status, kind) == EXPECTED["no_funds"][inbound], message
        assert await served.balance_usd(broke) == "0"

        mkey, key = await customer(served)
        status, kind, _ = await ask(served, key, "[sim:error_after=0] hello")
        assert (status, kind) == EXPECTED["overloaded"][inbound]
        [record] = await usage_records(served, mkey)
        assert record["status"] == "upstream_error" and record["cost_usd"] == "0"
        assert await served.balance_usd(mkey) == "10"


async def test_an_unknown_path_answers_in_the_callers_shape(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> None:
    async with gateway(database_url, catalog_models, simulator, "openai") as served:
        _, key = await customer(served, "1")
        async with served.client(key) as c:
            gemini_404 = await c.post(
                "/v1beta/models/gemini-2.5-flash%0A:generateContent", json={"contents": []}
            )
            claude_404 = await c.post("/v1/nowhere", json={}, headers={"anthropic-version": "1"})
            openai_405 = await c.get("/v1/chat/completions")
    assert gemini_404.status_code == 404
    assert gemini_404.json()["error"]["status"] == "NOT_FOUND"
    assert claude_404.status_code == 404 and claude_404.json()["type"] == "error"
    assert claude_404.json()["error"]["type"] == "not_found_error"
    assert (
        openai_405.status_code == 405 and openai_405.json()["error"]["code"] == "method_not_allowed"
    )
