"""Rerank (POST /v1/rerank, Cohere and Jina shapes) through a served gateway
and the simulator, over plain HTTP (the openai SDK has no rerank): Cohere
models billed per search unit from ``meta.billed_units``, Jina and Voyage
models by tokens from ``usage``, the gateway counting whichever the upstream
leaves out, the hold by the documents' search units, billing-mode refusals,
and hostile bodies refused before anything is held or sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.billing.modes import Refusal, resolve_method
from tollway.billing.rerank import pair_tokens, search_units
from tollway.simulator import Simulator
from tollway.types import TOKENS_PER_MTOK, BillingMode, ModelKind, nano_to_usd

from conftest import Served, customer, usage_records
from fuzzing import FUZZ, assert_json_error, dump, values

RERANK = "/v1/rerank"
JSON = {"content-type": "application/json"}
QUERY = "capital of france"
DOCS = ["Paris is the capital of France", "Berlin is in Germany", "France grows wine"]


def sent_upstream(simulator: Simulator) -> int:
    return simulator.stats.by_path.get(RERANK, 0)


def per_unit_nano(served: Served, model: str) -> int:
    price = served.gw.state.catalog.get(model).per_call
    assert price is not None
    return price.price_nano


def per_token_nano(served: Served, model: str, tokens: int) -> int:
    price = served.gw.state.catalog.get(model).per_use
    assert price is not None and price.input_mtok is not None
    exact = Fraction(tokens * price.input_mtok, TOKENS_PER_MTOK)
    return (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)  # half up


def words(texts: list[str]) -> list[int]:
    return [len(text.split()) for text in texts]


async def rerank(served: Served, key: str, body: dict[str, Any]) -> httpx.Response:
    async with served.client(key) as c:
        return await c.post(RERANK, content=dump(body), headers=JSON)


async def test_cohere_rerank_is_billed_per_search_unit(served: Served) -> None:
    mkey, key = await customer(served)
    got = await rerank(
        served, key, {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 2}
    )
    assert got.status_code == 200, got.text
    answer = got.json()
    assert [r["index"] for r in answer["results"]] == [0, 2]  # most relevant first
    assert "document" not in answer["results"][0]  # Cohere returns none unless asked
    assert answer["meta"]["billed_units"] == {"search_units": 1}
    cost = per_unit_nano(served, "rerank-v3.5")
    assert cost == 2_000_000  # $2.00 per 1,000 searches
    assert got.headers["x-tollway-billing-method"] == "per_call"
    assert got.headers["x-tollway-cost-usd"] == nano_to_usd(cost)
    [record] = await usage_records(served, mkey)
    assert (record["model"], record["endpoint"], record["method"]) == (
        "rerank-v3.5",
        "rerank",
        "per_call",
    )
    assert (record["items"], record["cost_usd"], record["usage_source"]) == (
        1,
        nano_to_usd(cost),
        "upstream",
    )
    assert record["unit_prices_usd"] == {"searches": nano_to_usd(cost)}


async def test_many_and_long_documents_are_several_search_units(served: Served) -> None:
    """150 documents, one of 1,000 words (three chunks with the query): 152
    chunks, two units."""
    mkey, key = await customer(served)
    documents = [f"document number {i}" for i in range(149)] + ["word " * 1000]
    got = await rerank(served, key, {"model": "rerank-v3.5", "query": QUERY,
                                     "documents": documents, "return_documents": True})  # fmt: skip
    assert got.status_code == 200, got.text
    assert got.json()["results"][0]["document"]["text"]
    units = search_units(len(QUERY.split()), words(documents))
    assert units == got.json()["meta"]["billed_units"]["search_units"] == 2
    [record] = await usage_records(served, mkey)
    assert record["items"] == units
    assert record["cost_usd"] == nano_to_usd(units * per_unit_nano(served, "rerank-v3.5"))


@pytest.mark.parametrize("model", ["jina-reranker-v2-base-multilingual", "rerank-2-lite"])
async def test_token_billed_rerankers_are_billed_by_the_reported_tokens(
    served: Served, model: str
) -> None:
    mkey, key = await customer(served)
    got = await rerank(served, key, {"model": model, "query": QUERY, "documents": DOCS})
    assert got.status_code == 200, got.text
    answer = got.json()
    tokens = pair_tokens(len(QUERY.split()), words(DOCS))  # the query read with each document
    assert answer["usage"]["total_tokens"] == tokens == 3 * 3 + 6 + 4 + 3
    assert answer["results"][0]["document"] == {"text": DOCS[0]}  # Jina returns them
    cost = per_token_nano(served, model, tokens)
    assert cost > 0
    assert got.headers["x-tollway-billing-method"] == "per_use"
    [record] = await usage_records(served, mkey)
    assert record["tokens"]["input_tokens"] == tokens
    assert (record["cost_usd"], record["usage_source"]) == (nano_to_usd(cost), "upstream")
    assert Decimal("10") - Decimal(await served.balance_usd(mkey)) == Decimal(nano_to_usd(cost))


async def test_what_the_upstream_leaves_out_is_counted(served: Served) -> None:
    """No billed units, no usage: never free; the gateway counts both."""
    mkey, key = await customer(served)
    query = f"{QUERY} [sim:no_usage]"
    for model in ("rerank-v3.5", "jina-reranker-v2-base-multilingual"):
        got = await rerank(served, key, {"model": model, "query": query, "documents": DOCS})
        assert got.status_code == 200, got.text
    counter = await served.gw.counter.ready()
    tokens = pair_tokens(counter.count(query), [counter.count(d) for d in DOCS])
    jina, cohere = await usage_records(served, mkey)
    assert (cohere["items"], cohere["usage_source"]) == (1, "estimated")
    assert cohere["cost_usd"] == nano_to_usd(per_unit_nano(served, "rerank-v3.5"))
    assert (jina["tokens"]["input_tokens"], jina["usage_source"]) == (tokens, "estimated")
    assert jina["cost_usd"] == nano_to_usd(
        per_token_nano(served, "jina-reranker-v2-base-multilingual", tokens)
    )


async def test_the_hold_counts_the_documents_search_units(
    served: Served, simulator: Simulator
) -> None:
    """201 documents hold three units ($0.006): more than $0.005 of credit."""
    mkey, key = await customer(served, credit="0.005")
    sent = sent_upstream(simulator)
    many = {"model": "rerank-v3.5", "query": QUERY, "documents": ["doc"] * 201}
    got = await rerank(served, key, many)
    assert got.status_code == 402, got.text
    assert got.json()["error"]["code"] == "insufficient_quota"
    assert sent_upstream(simulator) == sent
    ok = await rerank(served, key, {**many, "documents": ["doc"] * 200})
    assert ok.status_code == 200, ok.text
    assert await served.balance_usd(mkey) == "0.001"


async def test_a_per_call_reranker_refuses_a_pay_per_use_token(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_use")
    sent = sent_upstream(simulator)
    got = await rerank(served, key, {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS})
    assert got.status_code == 403, got.text
    assert got.json()["error"]["code"] == "billing_mode_mismatch"
    assert sent_upstream(simulator) == sent
    jina = {"model": "jina-reranker-v2-base-multilingual", "query": QUERY, "documents": DOCS}
    assert (await rerank(served, key, jina)).status_code == 200
    _, call_key = await customer(served, billing_mode="pay_per_call")
    assert (await rerank(served, call_key, jina)).status_code == 403
    assert await served.balance_usd(mkey) != "10"  # the Jina call was billed
    async with served.client(key) as c:  # and the listing shows only what the mode can call
        listed = {m["id"] for m in (await c.get("/v1/models")).json()["data"]}
    assert "jina-reranker-v2-base-multilingual" in listed and "rerank-v3.5" not in listed
    assert "omni-moderation-latest" in listed


@pytest.mark.parametrize("mode", [mode.value for mode in BillingMode if mode.value != "hybrid"])
async def test_every_reranker_in_every_mode_is_served_or_refused_by_its_mode(
    served: Served, mode: str
) -> None:
    _, key = await customer(served, billing_mode=mode)
    rerankers = [m for m in served.gw.state.catalog if m.kind is ModelKind.RERANK]
    assert len(rerankers) >= 8
    for model in rerankers:
        got = await rerank(served, key, {"model": model.id, "query": QUERY, "documents": DOCS})
        refused = isinstance(resolve_method(BillingMode(mode), model), Refusal)
        assert got.status_code == (403 if refused else 200), (model.id, got.text)


async def test_a_chat_model_is_refused_here_and_a_reranker_on_chat(served: Served) -> None:
    _, key = await customer(served)
    got = await rerank(served, key, {"model": "gpt-4o", "query": QUERY, "documents": DOCS})
    assert got.status_code == 400 and got.json()["error"]["code"] == "wrong_endpoint"
    async with served.client(key) as c:
        chat = await c.post(
            "/v1/chat/completions",
            json={"model": "rerank-v3.5", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert chat.status_code == 400
    assert "POST /v1/rerank" in chat.json()["error"]["message"]


HOSTILE = [
    {"query": None},
    {"query": ""},
    {"query": ["a"]},
    {"documents": None},
    {"documents": []},
    {"documents": "a"},
    {"documents": ["a"] * 1001},
    {"documents": [1]},
    {"documents": [{"title": "a"}]},
    {"top_n": 0},
    {"top_n": 1001},
    {"top_n": "2"},
    {"top_n": 1.5},
    {"max_chunks_per_doc": 0},
    {"max_tokens_per_doc": -1},
    {"return_documents": "yes"},
    {"rank_fields": "text"},
    {"model": "no-such-reranker"},
]


@pytest.mark.parametrize("change", HOSTILE, ids=lambda c: dump(c)[:40])
async def test_a_hostile_field_is_a_4xx_that_changes_nothing(
    served: Served, simulator: Simulator, change: dict[str, Any]
) -> None:
    mkey, key = await customer(served)
    sent = sent_upstream(simulator)
    got = await rerank(
        served, key, {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, **change}
    )
    assert 400 <= got.status_code < 500, got.text
    assert_json_error(got)
    assert sent_upstream(simulator) == sent
    assert await served.balance_usd(mkey) == "10"
    assert await usage_records(served, mkey) == []


async def test_any_body_is_answered_without_a_5xx_or_a_charge_when_refused(
    served: Served,
) -> None:
    mkey, key = await customer(served)
    document = st.one_of(st.text(max_size=20), st.fixed_dictionaries({"text": values}), values)
    fields = {
        "query": st.one_of(st.text(max_size=20), values),
        "documents": st.one_of(st.lists(document, max_size=4), values),
        "top_n": st.one_of(st.integers(-1, 1002), values),
        "return_documents": values,
        "max_chunks_per_doc": st.one_of(st.integers(-1, 20), values),
    }
    model = st.sampled_from(["rerank-v3.5", "jina-reranker-v2-base-multilingual"])
    body = st.fixed_dictionaries({"model": model}, optional=fields)

    def check(base_url: str) -> None:
        owner = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {mkey}"})
        caller = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"})

        @FUZZ
        @given(body)
        def one(sent: dict[str, Any]) -> None:
            before = owner.get("/api/me").json()["balance_usd"]
            got = caller.post(RERANK, content=dump(sent), headers=JSON)
            assert got.status_code < 500, (sent, got.text[:300])
            if got.status_code >= 400:
                assert_json_error(got)
                assert owner.get("/api/me").json()["balance_usd"] == before

        try:
            one()
        finally:
            owner.close()
            caller.close()

    await asyncio.to_thread(check, served.base_url)
