"""POST /v1/images/generations: OpenAI's images API, billed per image or by tokens.

- Per-call models (DALL-E, Flux, nano-banana-pro ...): price x images made.
  Where the catalog holds a size/quality table (DALL-E 3: standard/hd x three
  sizes), the call is priced at its entry; a size or quality the table does
  not list is a 400, before anything is held.
- Token-billed models (gpt-image-1): held by the size x quality estimate
  (``billing/holds.py``), billed by the usage the upstream reports (text in,
  image in, image out); without usage, by the estimate, marked ``estimated``.
- Gemini's image models (nano-banana ...) make one image a call: n images are
  n calls (relay/image_calls.py), billed per image or by the tokens each call
  reports. A size only picks the aspect ratio closest to it (1792x1024 is
  16:9); one near none of theirs is a 400, and so is ``response_format:
  "url"`` (they return the image itself). ``quality`` means nothing to them
  and is ignored.
- Generation is synchronous: a client that leaves while the upstream works is
  billed all the same, and the record says ``client_disconnected``.

Edits and variations (multipart) are relay/image_edits.py's; they read
answers and bill them with this module's functions.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.holds import (
    AUTO,
    IMAGE_QUALITIES,
    image_estimate_usage,
    image_hold_tokens,
    parse_size,
)
from tollway.billing.images import ImageRequest, image_request, image_shape, one_image_a_call
from tollway.billing.shapes import CallShape, ImageShape
from tollway.endpoints import IMAGES
from tollway.errors import bad_request
from tollway.gateway import Gateway
from tollway.protocols.gemini.images import (
    IMAGE_TOKENS,
    INPUT_IMAGE_TOKENS,
    closest_aspect_ratio,
    offered_ratios,
)
from tollway.providers import Answer
from tollway.relay.forward import forward_unary
from tollway.relay.image_calls import forward_each
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.types import BillingMethod, Model, Usage

ENDPOINT = "images/generations"


def _shape(inbound: Inbound, model: Model) -> CallShape:
    asked = image_request(inbound.payload)
    if one_image_a_call(model):
        check_gemini(model, inbound.payload, asked)
    return image_shape(asked, len(inbound.body), model)


def check_gemini(model: Model, payload: dict[str, Any], asked: ImageRequest) -> None:
    """What Gemini's image models cannot do, refused before anything is held."""
    if payload.get("response_format") == "url":
        raise bad_request(
            f"Model '{model.id}' returns the image itself, not a link: ask for "
            "response_format 'b64_json' (or leave it out).",
            param="response_format",
        )
    if asked.size not in (None, AUTO) and closest_aspect_ratio(asked.size) is None:
        raise bad_request(
            f"Model '{model.id}' makes images in the aspect ratios {offered_ratios()} "
            f"only; size {asked.size} is none of them (e.g. 1024x1024, 1536x1024, "
            "1792x1024, or 'auto').",
            param="size",
        )


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response:
    image = call.shape.image or ImageShape()  # _shape checked the body
    asked = ImageRequest(inbound.payload["prompt"], call.shape.n, image.size, image.quality)
    if one_image_a_call(call.model):
        return await forward_each(
            call,
            inbound,
            output_bound=image_hold_tokens(image.size, image.quality),
            items=lambda answer: images_made(answer, 1),
            estimate=lambda answer: estimate_one(call.gw, asked, answer),
            usage=lambda answer: reported_usage(call, asked, answer),
            client_gone=request.is_disconnected,
        )
    return await forward_unary(
        call,
        call.outbound(inbound),
        items=lambda answer: images_made(answer, asked.n),
        estimate=lambda answer: estimate_usage(call.gw, asked, answer),
        usage=lambda answer: reported_usage(call, asked, answer),
        client_gone=request.is_disconnected,
    )


GENERATIONS = Metered(IMAGES, ENDPOINT, _shape, _forward)


async def image_generations(request: Request) -> Response:
    result: Response = await run(GENERATIONS, request)
    return result


def images_made(answer: dict[str, Any], asked: int) -> int:
    data = answer.get("data")
    return len(data) if isinstance(data, list) else asked


def reported_usage(call: Call, asked: ImageRequest, answer: Answer) -> Usage | None:
    """The upstream's usage. A per-call charge needs none (the images are the
    usage): it is never estimated, and it is priced at the request's variant."""
    usage = answer.usage
    if call.method is BillingMethod.PER_CALL:
        usage = usage or Usage()
        usage.variant = asked.variant
    return usage


def estimate_usage(
    gw: Gateway, asked: ImageRequest, answer: dict[str, Any], image_input_tokens: int = 0
) -> Usage:
    """No usage came: the size and quality the answer says it made (gpt-image
    answers echo them), else the ones asked for; an edit's input images at
    what they were held for (``image_input_tokens``)."""
    size = answer.get("size")
    if not isinstance(size, str) or not parse_size(size):
        size = asked.size
    quality = answer.get("quality")
    if not isinstance(quality, str) or quality not in IMAGE_QUALITIES:
        quality = asked.quality
    prompt_tokens = gw.counter.count(asked.prompt)
    usage = image_estimate_usage(prompt_tokens, size, quality, images_made(answer, asked.n))
    usage.image_input_tokens = image_input_tokens
    return usage


def estimate_one(
    gw: Gateway, asked: ImageRequest, answer: dict[str, Any], input_images: int = 0
) -> Usage:
    """A Gemini image call that reported no usage: its prompt as counted (and
    an edit's ``input_images`` at what Gemini bills a large one), and each
    image at the tokens Gemini reports for one."""
    made = images_made(answer, 1)
    return Usage(
        input_tokens=gw.counter.count(asked.prompt) + input_images * INPUT_IMAGE_TOKENS,
        image_output_tokens=IMAGE_TOKENS * made,
        items=made,
    )
