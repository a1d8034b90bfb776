"""POST /v1/responses when the upstream answers exactly so (test_pipeline's
in-process upstream on an OpenAI channel, sent the call natively): an answer
without usage, and one that is not JSON."""

from __future__ import annotations

import openai
import orjson
import pytest
from test_pipeline import gateway
from test_responses import OPENAI_MODEL, USER, only_record

from tollway.transport import MockAnswer, UpstreamRequest
from tollway.types import Model

from conftest import customer, sdk


def response_saying(text: str) -> bytes:
    """A completed response of one message, without usage."""
    part = {"type": "output_text", "text": text, "annotations": []}
    message = {"type": "message", "id": "msg_up", "role": "assistant", "content": [part]}
    response = {"id": "resp_up", "object": "response", "created_at": 1, "model": OPENAI_MODEL}
    return orjson.dumps({**response, "status": "completed", "output": [message]})


async def test_an_answer_without_usage_is_counted_by_the_gateway(
    database_url: str, catalog_models: list[Model]
) -> None:
    answer = MockAnswer.json(response_saying("hello"))
    async with gateway(database_url, catalog_models, lambda r: answer) as (served, transport):
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            response = await client.responses.create(model=OPENAI_MODEL, input=USER)
        [sent] = transport.requests
        assert sent.url == "http://up.test/v1/responses"
        assert response.output_text == "hello"
        assert response.id.startswith("resp_") and response.id != "resp_up"
        record = await only_record(served, mkey)
        assert (record["status"], record["usage_source"], record["items"]) == ("ok", "estimated", 1)
        assert record["tokens"]["output_tokens"] == 1  # "hello", counted by the gateway
        assert record["tokens"]["input_tokens"] > 0


async def test_an_answer_that_is_not_json_gives_the_hold_back(
    database_url: str, catalog_models: list[Model]
) -> None:
    def handler(request: UpstreamRequest) -> MockAnswer:
        return MockAnswer(200, (b"<html>oops</html>",), {"content-type": "text/html"})

    async with gateway(database_url, catalog_models, handler) as (served, _):
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            with pytest.raises(openai.APIStatusError) as caught:
                await client.responses.create(model=OPENAI_MODEL, input=USER)
        assert caught.value.status_code == 502
        assert caught.value.body["code"] == "upstream_error"  # type: ignore[index]
        record = await only_record(served, mkey)
        assert (record["status"], record["cost_usd"]) == ("upstream_error", "0")
        assert await served.balance_usd(mkey) == "10"
