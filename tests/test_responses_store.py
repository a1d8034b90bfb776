"""Stored responses end to end with the official openai SDK: retrieve, delete,
input_items and previous_response_id, each only for the account that made
the response (another account gets the 404 a missing one gets)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from test_responses import (
    CLAUDE,
    INSTRUCTIONS,
    OPENAI_MODEL,
    USER,
    WORDS,
    assert_cost,
    cost_nano,
    find,
    prompt_tokens,
    sent_to,
)

from tollway.simulator import Simulator
from tollway.types import Model

from conftest import Served, customer, sdk, usage_records
from native import gateway

NEXT = "[sim:tokens=3] And once more"


async def test_retrieve_input_items_and_delete(served: Served) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        made = await client.responses.create(
            model=OPENAI_MODEL, instructions=INSTRUCTIONS, input=USER
        )
        got = await client.responses.retrieve(made.id)
        assert got.id == made.id and got.output_text == made.output_text
        assert got.usage is not None and got.usage.input_tokens == made.usage.input_tokens  # type: ignore[union-attr]
        items = await client.responses.input_items.list(made.id)
        assert len(items.data) == 1
        [item] = items.data
        assert item.type == "message" and item.role == "user"  # type: ignore[union-attr]
        assert item.id.startswith("msg_")
        assert item.content[0].text == USER  # type: ignore[union-attr]
        await client.responses.delete(made.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.delete(made.id)


async def test_input_items_page_in_either_order(served: Served) -> None:
    _, key = await customer(served)
    turns: Any = [{"role": "user", "content": f"turn {i}"} for i in range(5)]
    async with sdk(served, key) as client:
        made = await client.responses.create(model=OPENAI_MODEL, input=turns)
        newest = [
            item.content[0].text
            async for item in client.responses.input_items.list(made.id, limit=2)
        ]  # type: ignore[union-attr]
        oldest = [
            item.content[0].text  # type: ignore[union-attr]
            async for item in client.responses.input_items.list(made.id, limit=2, order="asc")
        ]
    assert oldest == [f"turn {i}" for i in range(5)]
    assert newest == oldest[::-1]


async def test_a_streamed_response_is_stored_as_it_ended(served: Served) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        async with client.responses.stream(model=OPENAI_MODEL, input=USER) as stream:
            final = await stream.get_final_response()
        got = await client.responses.retrieve(final.id)
    assert got.output_text == final.output_text and got.status == "completed"


async def test_store_false_is_not_kept(served: Served) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        made = await client.responses.create(model=OPENAI_MODEL, input=USER, store=False)
        assert made.store is False
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(made.id)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(
                model=OPENAI_MODEL, input=NEXT, previous_response_id=made.id
            )
    assert caught.value.code == "previous_response_not_found"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_previous_response_id_continues_the_conversation(
    database_url: str, catalog_models: list[Model], simulator: Simulator, kind: str
) -> None:
    model_id = OPENAI_MODEL if kind == "openai" else CLAUDE
    async with gateway(database_url, catalog_models, simulator, kind) as served:
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            first = await client.responses.create(
                model=model_id, instructions=INSTRUCTIONS, input=USER, max_output_tokens=50
            )
            simulator.stats.recent.clear()
            second = await client.responses.create(
                model=model_id, input=NEXT, previous_response_id=first.id, max_output_tokens=50
            )
            third = await client.responses.create(
                model=model_id, input=NEXT, previous_response_id=second.id, max_output_tokens=50
            )
        assert second.previous_response_id == first.id
        assert len(second.output_text.split()) == 3
        # The instructions are not carried over; the earlier turns are, in order.
        tokens = prompt_tokens(USER, first.output_text, NEXT)
        assert second.usage is not None and second.usage.input_tokens == tokens
        third_tokens = prompt_tokens(USER, first.output_text, NEXT, second.output_text, NEXT)
        assert third.usage is not None and third.usage.input_tokens == third_tokens
        if kind == "openai":
            upstream = sent_to(simulator, "/v1/responses")[0]
            assert "previous_response_id" not in upstream and upstream["store"] is False
            assert [item.get("role") for item in upstream["input"]] == [
                "user",
                "assistant",
                "user",
            ]
        records = sorted(await usage_records(served, mkey), key=lambda r: r["created_at"])
        model = find(catalog_models, model_id)
        assert_cost(records[1], cost_nano(model, tokens, 3))


async def test_another_accounts_response_is_not_found(served: Served) -> None:
    _, key = await customer(served)
    other_mkey, other_key = await customer(served)
    async with sdk(served, key) as client:
        made = await client.responses.create(model=OPENAI_MODEL, input=USER)
    async with sdk(served, other_key) as other:
        for call in (
            other.responses.retrieve(made.id),
            other.responses.delete(made.id),
            other.responses.input_items.list(made.id),
        ):
            with pytest.raises(openai.NotFoundError) as caught:
                await call
            assert made.id in caught.value.message
        with pytest.raises(openai.BadRequestError) as refused:
            await other.responses.create(
                model=OPENAI_MODEL, input=NEXT, previous_response_id=made.id
            )
        assert refused.value.code == "previous_response_not_found"
    assert await usage_records(served, other_mkey) == []
    assert await served.balance_usd(other_mkey) == "10"
    async with sdk(served, key) as client:  # the owner's is untouched
        assert (await client.responses.retrieve(made.id)).id == made.id


async def test_ids_that_could_name_nothing_are_not_found(served: Served) -> None:
    _, key = await customer(served)
    async with served.client(key) as http:
        for bad in ("resp_" + "0" * 100, "%00", "r%C3%A9sp", "resp_x"):
            for method, path in (
                ("GET", f"/v1/responses/{bad}"),
                ("DELETE", f"/v1/responses/{bad}"),
                ("GET", f"/v1/responses/{bad}/input_items"),
            ):
                got = await http.request(method, path)
                assert got.status_code == 404, (method, path, got.text)
                assert got.json()["error"]["type"] == "invalid_request_error"
        for query in ("limit=0", "limit=101", "limit=x", "order=up", "after=nope"):
            made = await _made(served, key)
            got = await http.get(f"/v1/responses/{made}/input_items?{query}")
            assert got.status_code == 400, (query, got.text)


async def _made(served: Served, key: str) -> str:
    async with sdk(served, key) as client:
        return (await client.responses.create(model=OPENAI_MODEL, input=f"hi {WORDS}")).id


async def test_a_stored_response_replays_as_a_stream(served: Served) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        made = await client.responses.create(model=OPENAI_MODEL, input=USER)
        async with client.responses.stream(response_id=made.id) as stream:
            replayed = await stream.get_final_response()
        assert replayed.id == made.id and replayed.output_text == made.output_text
        events = await client.responses.retrieve(made.id, stream=True, starting_after=1)
        kinds = [(event.sequence_number, event.type) async for event in events]
    assert kinds[0] == (2, "response.output_item.added")
    assert kinds[-1][1] == "response.completed"
    async with served.client(key) as http:
        got = await http.get(f"/v1/responses/{made.id}?stream=yes")
        assert got.status_code == 400
        got = await http.get(f"/v1/responses/{made.id}?stream=true&starting_after=-1")
        assert got.status_code == 400
