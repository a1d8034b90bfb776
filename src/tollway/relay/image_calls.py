"""Images from models that make one a call (Gemini's): n images are n calls
of one image, sent at once, answered and billed as one call.

The hold counts the prompt once a call and bounds each image's output
(billing/images.py); each call carries that bound (``held_output_tokens``),
so what the n calls cost stays within the hold.

A call that fails or makes no image is left out: the client gets the images
the others made and pays for those calls alone. When no call made an image
the hold is released and the client gets the first call's error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response

from tollway.errors import ApiError, upstream_error
from tollway.ledger import UsageStatus
from tollway.providers import Answer, NotJson, Outbound
from tollway.relay.forward import (
    AnswerEstimator,
    AnswerUsage,
    ClientGone,
    estimated,
    released_on_failure,
    transport_error,
)
from tollway.relay.pipeline import COST_HEADER, Call, Inbound
from tollway.types import TOKEN_CLASSES, Usage, UsageSource, nano_to_usd
from tollway.upstream import UpstreamError


async def forward_each(
    call: Call,
    inbound: Inbound,
    output_bound: int,
    items: Callable[[dict[str, Any]], int],
    estimate: AnswerEstimator,
    usage: AnswerUsage,
    client_gone: ClientGone,
) -> Response:
    """Send ``call.shape.n`` one-image calls at once, each generating at most
    ``output_bound`` tokens; answer with every image made, billed as one."""
    outbound = one_image(call, inbound, output_bound)
    async with released_on_failure(call):
        results = await asyncio.gather(*(_one(call, outbound) for _ in range(call.shape.n)))
    answers = [result for result in results if isinstance(result, Answer)]
    if not answers:
        failure = next(result for result in results if isinstance(result, ApiError))
        await call.release(UsageStatus.UPSTREAM_ERROR, f"no image made: {failure.message}")
        raise failure
    async with released_on_failure(call):  # a bug reading the answers gives the hold back
        reported = await _usage(call, answers, estimate, usage)
        reported.items = sum(items(answer.parsed) for answer in answers)
        body = answers[0].body if len(answers) == 1 else combined(answers)
    status, detail = UsageStatus.OK, None
    if len(answers) < len(results):
        detail = f"{len(results) - len(answers)} of {len(results)} calls made no image"
    if await client_gone():
        status = UsageStatus.CLIENT_DISCONNECTED
        detail = "the client left before the answer; the upstream had done the work"
    cost = await call.settle(reported, status, detail)
    headers = call.headers()
    headers[COST_HEADER] = nano_to_usd(cost)
    return Response(body, 200, headers, media_type="application/json")


def one_image(call: Call, inbound: Inbound, output_bound: int) -> Outbound:
    """The request for one of the images (the same for each). A body built
    by the provider from the payload (an edit's) is not encoded here."""
    outbound = call.outbound(inbound)
    payload = {**inbound.payload, "n": 1} if call.shape.n > 1 else inbound.payload
    body = orjson.dumps(payload) if call.shape.n > 1 and inbound.json else inbound.body
    return dataclasses.replace(
        outbound, payload=payload, body=body, held_output_tokens=output_bound
    )


async def _one(call: Call, outbound: Outbound) -> Answer | ApiError:
    """One call's answer, or what the client would be told of its failure."""
    try:
        resp = await call.send(outbound)
        try:
            data = await resp.read()
        finally:
            resp.close()
    except (UpstreamError, OSError) as exc:
        return transport_error(exc)
    if resp.status != 200:
        return call.provider.failure(resp.status, data)
    try:
        return call.provider.answer(outbound, data)
    except NotJson:
        return upstream_error("The upstream answered with a body that is not JSON.")
    except ApiError as exc:  # an answer without an image
        return exc


async def _usage(
    call: Call, answers: list[Answer], estimate: AnswerEstimator, usage: AnswerUsage
) -> Usage:
    """The calls' usage added up; a call that reported none is estimated."""
    reported = [usage(answer) for answer in answers]
    if any(one is None for one in reported):
        await call.gw.counter.ready()
    return summed(
        [
            one if one is not None else estimated(estimate(answer.parsed))
            for one, answer in zip(reported, answers, strict=True)
        ]
    )


def summed(usages: list[Usage]) -> Usage:
    """The usage of several calls as one (estimated if any part was)."""
    total = Usage(variant=usages[0].variant)
    for usage in usages:
        for name in TOKEN_CLASSES:
            setattr(total, name, getattr(total, name) + getattr(usage, name))
        if usage.source is UsageSource.ESTIMATED:
            total.source = UsageSource.ESTIMATED
    return total


def combined(answers: list[Answer]) -> bytes:
    """One images response of several: every image, the usages added up (if
    every answer reported one), the rest as the first answer has it."""
    body = dict(answers[0].parsed)
    body["data"] = [image for answer in answers for image in _images(answer.parsed)]
    usages = [answer.parsed.get("usage") for answer in answers]
    body.pop("usage", None)
    if all(isinstance(one, dict) for one in usages):
        body["usage"] = functools.reduce(_added, usages)
    return orjson.dumps(body)


def _images(answer: dict[str, Any]) -> list[Any]:
    data = answer.get("data")
    return data if isinstance(data, list) else []


def _added(first: Any, second: Any) -> Any:
    """Two usages as one: counts added, nested objects too; a field only one
    of them has is dropped."""
    if isinstance(first, dict) and isinstance(second, dict):
        return {key: _added(first[key], second[key]) for key in first if key in second}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (first, second)):
        return first + second
    return first
