"""POST /v1/rerank (Cohere and Jina shape), to an OpenAI-type channel at
``{base_url}/rerank`` (as new-api sends Jina- and Cohere-compatible rerank).

The answer passes through as the upstream gave it. A per-call price is
charged per search unit, from Cohere's ``meta.billed_units.search_units``; a
per-use price by input tokens, from Jina's ``usage.total_tokens`` (or
Cohere's ``meta.billed_units.input_tokens``). Whatever the billing method
needs and the upstream does not report, the gateway counts
(billing/rerank.py), and the record says so: a reranker is never free for
want of a usage field.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.rerank import pair_tokens, rerank_request, rerank_shape, search_units
from tollway.billing.shapes import CallShape
from tollway.endpoints import RERANK
from tollway.protocols.openai import token_count
from tollway.providers import Answer
from tollway.relay.forward import forward_unary, released_on_failure
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.types import BillingMethod, Model, Usage


def _shape(inbound: Inbound, model: Model) -> CallShape:
    return rerank_shape(inbound.payload, len(inbound.body))


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response:
    asked = rerank_request(inbound.payload)
    by_units = call.method is BillingMethod.PER_CALL
    async with released_on_failure(call):  # what is not reported is counted
        counter = await call.gw.counter.ready()

    @functools.cache
    def counted() -> tuple[int, int]:
        """(search units, tokens) as the gateway counts them."""
        query = counter.count(asked.query)
        documents = [counter.count(text) for text in asked.documents]
        units = search_units(query, documents, asked.max_chunks_per_doc)
        return units, pair_tokens(query, documents)

    def items(answer: dict[str, Any]) -> int:
        units = reported_units(answer)[0]
        return counted()[0] if units is None else units

    def reported(answer: Answer) -> Usage | None:
        """The usage of the figure this call is billed by, if the upstream reported it."""
        units, tokens = reported_units(answer.parsed)
        if (units if by_units else tokens) is None:
            return None
        return Usage(input_tokens=tokens or 0)

    return await forward_unary(
        call,
        call.outbound(inbound),
        items=items,
        estimate=lambda _answer: Usage(input_tokens=counted()[1]),
        usage=reported,
    )


RERANKING = Metered(RERANK, "rerank", _shape, _forward)


async def rerank(request: Request) -> Response:
    result: Response = await run(RERANKING, request)
    return result


def reported_units(answer: dict[str, Any]) -> tuple[int | None, int | None]:
    """(search units, input tokens) as the answer reports them (None: not
    reported, or not a count): Cohere's ``meta.billed_units``, Jina's ``usage``."""
    meta = answer.get("meta")
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    billed = billed if isinstance(billed, dict) else {}
    usage = answer.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    units = _count(billed.get("search_units"))
    tokens = _count(usage.get("total_tokens"))
    if tokens is None:
        tokens = _count(billed.get("input_tokens"))
    return units, tokens


def _count(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return token_count(value)
    except ValueError:
        return None
