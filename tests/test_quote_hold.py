"""A quote of a request body is the hold the same body gets, for every model
in the catalog and every kind of request: both go through the same shape and
the same bill."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollway.billing.holds import DEFAULT_HOLD_OUTPUT_TOKENS, hold_bill
from tollway.billing.modes import Refusal, resolve_method
from tollway.billing.pricing import PricingError, bill
from tollway.manage.quote import usage_from_request
from tollway.relay.audio import SPEECH_CALL
from tollway.relay.chat import CHAT_COMPLETIONS
from tollway.relay.embeddings import EMBED
from tollway.relay.images import GENERATIONS
from tollway.relay.moderations import MODERATE
from tollway.relay.pipeline import Inbound, Metered
from tollway.relay.rerank import RERANKING
from tollway.relay.videos import CREATE
from tollway.types import BillingMode, Model, ModelKind

BODIES: dict[ModelKind, tuple[Metered, dict[str, Any]]] = {
    ModelKind.TEXT: (
        CHAT_COMPLETIONS,
        {"messages": [{"role": "user", "content": "héllo " * 40}], "max_tokens": 300, "n": 2},
    ),
    ModelKind.MULTIMODAL: (
        CHAT_COMPLETIONS,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                }
            ]
        },
    ),
    ModelKind.AUDIO: (CHAT_COMPLETIONS, {"messages": [{"role": "user", "content": "say hi"}]}),
    ModelKind.EMBEDDING: (EMBED, {"input": ["one", "two three"]}),
    ModelKind.IMAGE: (GENERATIONS, {"prompt": "a lighthouse", "n": 2}),
    ModelKind.VIDEO: (CREATE, {"prompt": "waves"}),
    ModelKind.MODERATION: (MODERATE, {"input": ["is this fine?", "and this"]}),
    ModelKind.RERANK: (RERANKING, {"query": "what", "documents": ["a", {"text": "b"}] * 60}),
    ModelKind.SPEECH: (SPEECH_CALL, {"input": "héllo there", "voice": "alloy", "speed": 0.5}),
}
# A transcription's file cannot ride in a quote's JSON: it is quoted by audio_input_ms.
UNQUOTED_BODIES = frozenset({ModelKind.TRANSCRIPTION})


def relay_hold(metered: Metered, model: Model, mode: BillingMode, body: dict[str, Any]) -> int:
    """What the relay holds for ``body``: its recipe's shape, billed as a hold."""
    payload = {**body, "model": model.id}
    inbound = Inbound(payload, orjson.dumps(payload), json=metered is not CREATE)
    method = resolve_method(mode, model)
    assert not isinstance(method, Refusal)
    shape = metered.shape(inbound, model)
    return hold_bill(model, method, shape, DEFAULT_HOLD_OUTPUT_TOKENS).total_nano


def quoted(model: Model, mode: BillingMode, body: dict[str, Any]) -> int:
    method = resolve_method(mode, model)
    assert not isinstance(method, Refusal)
    usage = usage_from_request({**body, "model": model.id}, model, DEFAULT_HOLD_OUTPUT_TOKENS)
    return bill(model, method, usage).total_nano


def test_a_quote_of_a_body_is_its_hold_for_every_model(catalog_models: list[Model]) -> None:
    compared = dict.fromkeys(BODIES, 0)
    for mode in (BillingMode.PAY_PER_USE, BillingMode.PAY_PER_CALL):
        for model in catalog_models:
            if isinstance(resolve_method(mode, model), Refusal) or model.kind in UNQUOTED_BODIES:
                continue
            metered, body = BODIES[model.kind]
            try:
                held = relay_hold(metered, model, mode, body)
            except PricingError:  # no price for the default variant: refused both ways
                with pytest.raises(PricingError):
                    quoted(model, mode, body)
                continue
            assert quoted(model, mode, body) == held, (model.id, mode)
            compared[model.kind] += 1
    assert all(compared.values()), compared  # every kind was compared


def test_a_quote_of_a_responses_body_is_its_hold(catalog_models: list[Model]) -> None:
    """A chat model's ``input`` is a Responses call: quoted as the relay holds
    it, translated to the chat call it becomes (relay/responses.py)."""
    from tollway.protocols import CODECS
    from tollway.protocols.responses import sent_natively
    from tollway.relay.responses import RESPONSES

    body = {"input": [{"role": "user", "content": "héllo " * 40}], "max_output_tokens": 300}
    compared = 0
    for model in catalog_models:
        if model.kind not in RESPONSES.endpoint.kinds:
            continue
        method = resolve_method(BillingMode.PAY_PER_USE_PRIORITY, model)
        if isinstance(method, Refusal):
            continue
        payload = {**body, "model": model.id}
        hub = CODECS["responses"].request_to_hub(payload)
        native = sent_natively(payload)  # as read_responses sends it on
        inbound = Inbound(hub, orjson.dumps(hub), protocol="responses", native=native)
        shape = RESPONSES.shape(inbound, model)
        held = hold_bill(model, method, shape, DEFAULT_HOLD_OUTPUT_TOKENS).total_nano
        assert quoted(model, BillingMode.PAY_PER_USE_PRIORITY, body) == held, model.id
        compared += 1
    assert compared > 50
