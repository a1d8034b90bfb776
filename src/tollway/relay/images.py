"""POST /v1/images/generations: OpenAI's images API, billed per image or by tokens.

- Per-call models (DALL-E, Flux, nano-banana-pro ...): price x images made.
  Where the catalog holds a size/quality table (DALL-E 3: standard/hd x three
  sizes), the call is priced at its entry; a size or quality the table does
  not list is a 400, before anything is held.
- Token-billed models (gpt-image-1): held by the size x quality estimate
  (``billing/holds.py``), billed by the usage the upstream reports (text in,
  image in, image out); without usage, by the estimate, marked ``estimated``.
- Generation is synchronous: a client that leaves while the upstream works is
  billed all the same, and the record says ``client_disconnected``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.holds import IMAGE_QUALITIES, image_estimate_usage, parse_size
from tollway.billing.images import ImageRequest, image_request, image_shape
from tollway.billing.shapes import CallShape, ImageShape
from tollway.endpoints import IMAGES
from tollway.gateway import Gateway
from tollway.providers import Answer
from tollway.relay.forward import forward_unary
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.types import BillingMethod, Model, Usage

ENDPOINT = "images/generations"


def _shape(inbound: Inbound, model: Model) -> CallShape:
    return image_shape(image_request(inbound.payload), len(inbound.body))


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response:
    image = call.shape.image or ImageShape()  # _shape checked the body
    asked = ImageRequest(inbound.payload["prompt"], call.shape.n, image.size, image.quality)
    return await forward_unary(
        call,
        call.outbound(inbound),
        items=lambda answer: images_made(answer, asked.n),
        estimate=lambda answer: _estimate(call.gw, asked, answer),
        usage=lambda answer: _reported(call, asked, answer),
        client_gone=request.is_disconnected,
    )


GENERATIONS = Metered(IMAGES, ENDPOINT, _shape, _forward)


async def image_generations(request: Request) -> Response:
    result: Response = await run(GENERATIONS, request)
    return result


def images_made(answer: dict[str, Any], asked: int) -> int:
    data = answer.get("data")
    return len(data) if isinstance(data, list) else asked


def _reported(call: Call, asked: ImageRequest, answer: Answer) -> Usage | None:
    """The upstream's usage. A per-call charge needs none (the images are the
    usage): it is never estimated, and it is priced at the request's variant."""
    usage = answer.usage
    if call.method is BillingMethod.PER_CALL:
        usage = usage or Usage()
        usage.variant = asked.variant
    return usage


def _estimate(gw: Gateway, asked: ImageRequest, answer: dict[str, Any]) -> Usage:
    """No usage came: the size and quality the answer says it made (gpt-image
    answers echo them), else the ones asked for."""
    size = answer.get("size")
    if not isinstance(size, str) or not parse_size(size):
        size = asked.size
    quality = answer.get("quality")
    if not isinstance(quality, str) or quality not in IMAGE_QUALITIES:
        quality = asked.quality
    prompt_tokens = gw.counter.count(asked.prompt)
    return image_estimate_usage(prompt_tokens, size, quality, images_made(answer, asked.n))
