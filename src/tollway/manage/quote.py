"""What a call would cost, without making it: from given usage, or from the
call's own body (then its hold: the same shape and the same computation as
the call's, of the body as compact JSON).

Image calls are quoted from their body (``prompt``, ``n``, ``size``,
``quality``) or from the fields ``n``, ``size``, ``quality``: per call, the
price of that size/quality x n; by tokens, the hold's estimate of the image
output tokens (about 5,000 a 1024x1024 high/HD image) x n.

Speech is quoted from its body (the characters of ``input``, or for a
token-priced model the hold's bound) or from ``input_characters``; a
transcription from ``audio_input_ms`` (its file cannot ride in a JSON body).

A token's quote is priced in its price group: the cost x the group's
multiplier, rounded once as the call's bill is, and the lines' unit prices
and costs x the multiplier, exact (they add up to the cost before that one
rounding). A quote by billing mode alone is at catalog prices.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import orjson

from tollway.billing.audio import speech_request, speech_shape
from tollway.billing.completions import completion_shape
from tollway.billing.groups import exact_usd
from tollway.billing.holds import hold_usage, image_hold_tokens
from tollway.billing.images import image_request, image_shape
from tollway.billing.moderations import moderation_shape
from tollway.billing.modes import Refusal, resolve_method
from tollway.billing.pricing import ONE, UNIT_LINES, PricingError, bill
from tollway.billing.rerank import rerank_shape
from tollway.billing.shapes import CallShape, chat_shape, embeddings_shape
from tollway.billing.videos import video_shape
from tollway.endpoints import (
    COMPLETIONS,
    MODERATIONS,
    RERANK,
    RESPONSES,
    SPEECH,
    TRANSCRIPTIONS,
    VIDEOS,
    check_quoted,
    quoted_endpoint,
)
from tollway.errors import bad_request
from tollway.protocols import CODECS
from tollway.protocols.responses import sent_natively
from tollway.state import Group
from tollway.types import (
    USAGE_CLASSES,
    BillingMode,
    Cost,
    Model,
    Usage,
    UsageSource,
    nano_to_usd,
)


def usage_from_fields(fields: dict[str, Any]) -> Usage:
    values: dict[str, int] = {}
    for name in (*USAGE_CLASSES, "n", "seconds"):
        value = fields.get(name, 1 if name == "n" else 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_request(f"'{name}' must be a whole number, 0 or more.", param=name)
        values[name] = value
    if "size" in fields or "quality" in fields:
        return _image_usage_from_fields(fields, values)
    usage = Usage(items=values.pop("n"), seconds=values.pop("seconds"))
    for name, value in values.items():
        setattr(usage, name, value)
    return usage


def _image_usage_from_fields(fields: dict[str, Any], values: dict[str, int]) -> Usage:
    """n images of a size and quality; without token counts, by tokens the
    image output is the hold's estimate."""
    asked = image_request({"prompt": "-", **{k: fields.get(k) for k in ("size", "quality")}})
    n = values.pop("n")
    seconds = values.pop("seconds")
    if any(values.values()):
        usage = Usage(items=n, seconds=seconds, variant=asked.variant)
        for name, value in values.items():
            setattr(usage, name, value)
        return usage
    return Usage(
        image_output_tokens=image_hold_tokens(asked.size, asked.quality) * n,
        items=n,
        seconds=seconds,
        variant=asked.variant,
        source=UsageSource.ESTIMATED,
    )


def usage_from_request(body: dict[str, Any], model: Model, hold_output_tokens: int) -> Usage:
    """The hold of a chat, embeddings, images or videos body: what the gateway
    holds when the same body is sent (the same shape, the same computation)."""
    check_quoted(model, body)  # the refusal the call itself would get
    usage = hold_usage(request_shape(body, model), model, hold_output_tokens)
    usage.source = UsageSource.ESTIMATED
    return usage


def request_shape(body: dict[str, Any], model: Model) -> CallShape:
    """The shape of ``body`` as the relay would send it (the model by its id)."""
    if body.get("model") != model.id:
        body = {**body, "model": model.id}
    endpoint = quoted_endpoint(model, body)
    if endpoint is VIDEOS:
        return video_shape(model, body)
    if endpoint is SPEECH:
        shape = speech_shape(speech_request(body, model), body)
        return CallShape(len(orjson.dumps(body)), max_output_tokens=0, audio=shape)
    if endpoint is TRANSCRIPTIONS:
        raise bad_request(
            "A transcription's file cannot be sent in a quote: quote it by 'audio_input_ms' "
            "(milliseconds of audio) instead of 'request'.",
            param="request",
        )
    body_bytes = len(orjson.dumps(body))
    if endpoint is COMPLETIONS:
        return completion_shape(body, body_bytes)
    if endpoint is MODERATIONS:
        return moderation_shape(body, body_bytes)
    if endpoint is RERANK:
        return rerank_shape(body, body_bytes)
    if endpoint is RESPONSES:  # held as the chat call it is translated to (relay/responses.py)
        hub = CODECS["responses"].request_to_hub(body)
        native_bytes = len(orjson.dumps(sent_natively(body)))
        return chat_shape(hub, max(len(orjson.dumps(hub)), native_bytes))
    if "prompt" in body and "messages" not in body and "input" not in body:
        return image_shape(image_request(body, where="request."), body_bytes, model)
    if "input" in body and "messages" not in body:
        return embeddings_shape(body, body_bytes)
    return chat_shape(body, body_bytes)


def quote(
    model: Model, mode: BillingMode, usage: Usage, group: Group | None = None
) -> dict[str, Any]:
    """What ``usage`` costs on ``model`` through ``mode``, in a token's price
    ``group`` (None: at catalog prices), or the refusal the call would get."""
    decision = resolve_method(mode, model)
    multiplier = ONE if group is None else group.multiplier
    base: dict[str, Any] = {
        "model": model.id,
        "billing_mode": mode.value,
        "group": None if group is None else group.name,
        "multiplier": "1" if group is None else group.text,
    }
    if isinstance(decision, Refusal):
        working = [m.value for m in decision.working_modes]
        return refused(base, "billing_mode_mismatch", decision.message, working)
    try:
        cost = bill(model, decision, usage, multiplier)
    except PricingError as exc:
        raise bad_request(str(exc)) from exc
    return {
        **base,
        "method": decision.value,
        "cost_usd": nano_to_usd(cost.total_nano),
        "breakdown": breakdown(cost, multiplier),
        "usage_source": usage.source.value,
        "refused": None,
    }


def refused(
    base: dict[str, Any], code: str, message: str, working_modes: list[str] | None = None
) -> dict[str, Any]:
    """A quote of a call that would be refused: no method, no cost, and why."""
    return {
        **base,
        "method": None,
        "cost_usd": None,
        "breakdown": [],
        "refused": {"code": code, "message": message, "working_modes": working_modes or []},
    }


def breakdown(cost: Cost, multiplier: Fraction = ONE) -> list[dict[str, Any]]:
    return [
        {
            "name": line.name,
            "quantity": line.quantity,
            "unit_price_usd": exact_usd(line.unit_price_nano * multiplier),
            "per": PER_UNIT_LINES.get(line.name)
            or ("1M tokens" if line.per > 1 else _unit_of(line.name)),
            "cost_usd": exact_usd(
                Fraction(line.quantity * line.unit_price_nano, line.per) * multiplier
            ),
        }
        for line in cost.lines
    ]


# What the unit price of a line counted in other units than tokens is per.
PER_UNIT_LINES = {"input_characters": "1M characters", "audio_input_ms": "minute"}


def _unit_of(line_name: str) -> str:
    """What a per-call line's unit price buys: 'images:1024x1024/hd' -> 'image'."""
    kind = line_name.partition(":")[0]
    units = {name: unit.value for unit, name in UNIT_LINES.items()}
    return units.get(kind, "item")
