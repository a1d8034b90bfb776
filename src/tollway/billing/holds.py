"""How much to hold before a call: its worst-case cost, from the request alone.

The hold only has to bound the settled cost in the usual case; if a call
turns out dearer (an upstream that ignores max_tokens), the real cost is
still charged in full at settlement, never capped to the hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.billing.pricing import price_call
from tollway.types import BillingMethod, Model, Usage

# Without max_tokens a chat call's output is bounded only by the model; hold
# for this many output tokens (operators can change it, TOLLWAY_HOLD_OUTPUT_TOKENS).
DEFAULT_HOLD_OUTPUT_TOKENS = 4096

# A JSON chat body spends at least ~2 bytes per token of prompt text, so
# bytes/2 bounds the prompt from above without tokenizing on the hot path.
BYTES_PER_PROMPT_TOKEN = 2


@dataclass(frozen=True, slots=True)
class CallShape:
    """What billing needs to know of a request before it is sent."""

    body_bytes: int
    max_output_tokens: int | None = None
    n: int = 1


def hold_usage(shape: CallShape, default_output_tokens: int = DEFAULT_HOLD_OUTPUT_TOKENS) -> Usage:
    n = max(shape.n, 1)
    output = (
        shape.max_output_tokens if shape.max_output_tokens is not None else default_output_tokens
    )
    return Usage(
        input_tokens=shape.body_bytes // BYTES_PER_PROMPT_TOKEN + 1,
        output_tokens=output * n,
        items=n,
    )


def hold_nano(
    model: Model,
    method: BillingMethod,
    shape: CallShape,
    default_output_tokens: int = DEFAULT_HOLD_OUTPUT_TOKENS,
) -> int:
    return price_call(model, method, hold_usage(shape, default_output_tokens)).total_nano
