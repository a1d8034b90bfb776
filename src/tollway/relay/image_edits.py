"""POST /v1/images/edits and /v1/images/variations: OpenAI's image edits and
DALL-E 2's variations, multipart uploads billed as generations are.

- Edits take one or more images (``image``, or ``image[]`` as the openai SDK
  sends a list, or ``image[N]``), an optional ``mask`` and a ``prompt``.
  Token-billed models (gpt-image-1 ...) are held for the prompt, every input
  image at its worst case (billing/images.py) and the output images for the
  size x quality x n asked; they are billed by the usage the upstream reports
  (text, image input and image output tokens), else estimated and marked.
  DALL-E 2 and per-call models are billed per image at the size's price.
- Gemini's image models (nano-banana ...) edit through generateContent: the
  prompt and every image inline, one image a call, n calls (as generations).
- Variations are DALL-E 2's alone: one square PNG, per image at its size.

Every part is checked before anything is held: a file's type by its first
bytes (PNG, JPEG, WebP), its size, the number of files, each text field's
type and range. The whole body is bounded by TOLLWAY_MAX_BODY_BYTES.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.holds import image_hold_tokens
from tollway.billing.images import (
    INPUT_FIDELITIES,
    MAX_N,
    ImageRequest,
    edit_shape,
    image_request,
    one_image_a_call,
)
from tollway.billing.shapes import CallShape, ImageShape
from tollway.endpoints import IMAGE_EDITS, IMAGE_VARIATIONS
from tollway.errors import bad_request
from tollway.gateway import Gateway
from tollway.protocols.gemini.images import InputImage
from tollway.providers import Outbound
from tollway.relay.forward import forward_unary, released_on_failure
from tollway.relay.image_calls import forward_each
from tollway.relay.images import (
    check_gemini,
    estimate_one,
    estimate_usage,
    images_made,
    reported_usage,
)
from tollway.relay.multipart import Form, encode_multipart, read_form
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.state import TokenInfo
from tollway.types import Model

EDITS = "images/edits"
VARIATIONS = "images/variations"
DEFAULT_MODEL = "dall-e-2"  # OpenAI's, when a request names none

MB = 1024 * 1024
MAX_IMAGES = 16  # gpt-image models take up to 16 input images
MAX_IMAGE_BYTES = 50 * MB  # each, for gpt-image models (the body limit comes first)
DALL_E_2_MAX_BYTES = 4 * MB  # DALL-E 2's image and any model's mask: a PNG under 4 MB
# Gemini takes inline data in a request of at most 20 MB: the images' base64
# (4/3 of their bytes) and the prompt must fit.
GEMINI_MAX_IMAGE_BYTES = 14 * MB
MAX_PROMPT_CHARS = 32_000
DALL_E_2_MAX_PROMPT_CHARS = 1000
MAX_TEXT_CHARS = 4096  # any other text field, passed on as sent
MAX_TEXT_FIELDS = 32
MAX_NAME_CHARS = 64
MAX_OUTPUT_COMPRESSION = 100
MAX_PARTIAL_IMAGES = 3

# Closed sets of the fields the upstream reads, checked so that a typo is the
# client's 400 and not an upstream error after a hold.
CHOICES = {
    "input_fidelity": INPUT_FIDELITIES,
    "background": frozenset({"transparent", "opaque", "auto"}),
    "output_format": frozenset({"png", "jpeg", "webp"}),
    "response_format": frozenset({"url", "b64_json"}),
}
INTEGERS = {
    "n": (1, MAX_N),
    "output_compression": (0, MAX_OUTPUT_COMPRESSION),
    "partial_images": (0, MAX_PARTIAL_IMAGES),
}
# Fields only gpt-image models read (DALL-E 2 refuses them).
GPT_IMAGE_ONLY = ("input_fidelity", "background", "output_format", "output_compression")
VARIATION_FIELDS = frozenset({"model", "n", "size", "response_format", "user"})
DALL_E_2_SIZES = ("256x256", "512x512", "1024x1024")
_WHOLE = re.compile(r"^[0-9]{1,6}$")
_IMAGE_PART = re.compile(r"^image(\[[0-9]{0,3}\])?$")

PNG, JPEG, WEBP = "image/png", "image/jpeg", "image/webp"


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded image as checked: the file, its type by its first bytes,
    its size, and (a PNG's) its width and height."""

    file: UploadFile
    mime_type: str
    size_bytes: int
    dimensions: tuple[int, int] | None


@dataclass
class ImageForm:
    """A multipart images request: its text fields (the last of a repeated
    one), its images in the order sent, and its mask."""

    form: Form
    fields: dict[str, str] = field(default_factory=dict)
    images: list[Upload] = field(default_factory=list)
    mask: Upload | None = None

    def upstream_items(self, model_id: str) -> list[tuple[str, Any]]:
        """The parts as sent upstream: the fields as the client sent them (the
        model by its catalog id), one image as ``image``, several as
        ``image[]`` (as the openai SDK sends them), then the mask."""
        items: list[tuple[str, Any]] = [(k, v) for k, v in self.fields.items() if k != "model"]
        items.insert(0, ("model", model_id))
        name = "image" if len(self.images) == 1 else "image[]"
        items += [(name, image.file) for image in self.images]
        if self.mask is not None:
            items.append(("mask", self.mask.file))
        return items


# --- reading ------------------------------------------------------------------


async def read_image_form(request: Request, gw: Gateway, variation: bool) -> ImageForm:
    """The multipart body's parts, each checked for what it can be alone."""
    form = await read_form(request, gw.settings.max_body_bytes)
    parsed = ImageForm(form)
    try:
        for name, value in form.items:
            await _take(parsed, name, value, variation)
        if not parsed.images:
            raise bad_request(
                "Send the image to edit as a file part named 'image' (several as 'image[]').",
                param="image",
            )
    except BaseException:
        await form.close()
        raise
    return parsed


async def _take(parsed: ImageForm, name: str, value: Any, variation: bool) -> None:
    if _IMAGE_PART.match(name) and (not variation or name == "image"):
        if len(parsed.images) == (1 if variation else MAX_IMAGES):
            most = "one image" if variation else f"at most {MAX_IMAGES} images"
            raise bad_request(f"An images request takes {most}.", param="image")
        parsed.images.append(await _upload(value, "image", MAX_IMAGE_BYTES))
    elif name == "mask" and not variation:
        if parsed.mask is not None:
            raise bad_request("Send one mask.", param="mask")
        parsed.mask = await _upload(value, "mask", DALL_E_2_MAX_BYTES)
        if parsed.mask.mime_type != PNG:
            raise bad_request("The mask must be a PNG (transparent where to edit).", param="mask")
    elif isinstance(value, UploadFile):
        raise bad_request(f"Unknown file part '{name[:64]}'.", param=name[:64])
    elif variation and name not in VARIATION_FIELDS:
        raise bad_request(f"Unknown field '{name[:64]}' for an image variation.", param=name[:64])
    else:
        _text(parsed, name, value)


def _text(parsed: ImageForm, name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise bad_request(f"'{name[:64]}' must be a text field.", param=name[:64])
    if len(name) > MAX_NAME_CHARS:
        raise bad_request(f"A field name is longer than {MAX_NAME_CHARS} characters.")
    limit = MAX_PROMPT_CHARS if name == "prompt" else MAX_TEXT_CHARS
    if len(value) > limit:
        raise bad_request(f"'{name}' is longer than {limit} characters.", param=name)
    if name not in parsed.fields and len(parsed.fields) == MAX_TEXT_FIELDS:
        raise bad_request(f"An images request takes at most {MAX_TEXT_FIELDS} fields.")
    parsed.fields[name] = value


async def _upload(value: Any, param: str, max_bytes: int) -> Upload:
    """A file part as an image: PNG, JPEG or WebP by its first bytes."""
    if not isinstance(value, UploadFile):
        raise bad_request(f"'{param}' must be a file upload.", param=param)
    size = value.size if value.size is not None else len(await value.read())
    await value.seek(0)
    head = await value.read(32)
    await value.seek(0)
    if size == 0:
        raise bad_request(f"The {param} file is empty.", param=param)
    if size > max_bytes:
        raise bad_request(f"The {param} file is larger than {max_bytes // MB} MB.", param=param)
    mime_type = sniff(head)
    if mime_type is None:
        raise bad_request(
            f"The {param} file is not a PNG, JPEG or WebP image.",
            param=param,
            code="invalid_image_format",
        )
    return Upload(value, mime_type, size, png_dimensions(head) if mime_type == PNG else None)


def sniff(head: bytes) -> str | None:
    """An image's type by its first bytes (None: none of PNG, JPEG, WebP)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def png_dimensions(head: bytes) -> tuple[int, int] | None:
    """A PNG's width and height, from its IHDR chunk (None: not there)."""
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _fields_payload(parsed: ImageForm) -> dict[str, Any]:
    """The text fields as billing reads them: numbers as numbers, ``stream``
    as a boolean (a value that is neither is kept, to be refused)."""
    payload: dict[str, Any] = dict(parsed.fields)
    for name, (low, high) in INTEGERS.items():
        value = payload.get(name)
        if value is None:
            continue
        if not _WHOLE.match(value) or not low <= int(value) <= high:
            raise bad_request(f"'{name}' must be a whole number from {low} to {high}.", param=name)
        payload[name] = int(value)
    for name, allowed in CHOICES.items():
        value = payload.get(name)
        if value is not None and value not in allowed:
            raise bad_request(
                f"'{name}' must be one of {', '.join(sorted(allowed))}; got {value[:64]!r}.",
                param=name,
            )
    stream = payload.get("stream")
    if stream is not None:
        payload["stream"] = {"true": True, "false": False}.get(stream, stream)
    payload["model"] = payload.get("model") or DEFAULT_MODEL
    return payload


async def _read(request: Request, gw: Gateway, variation: bool) -> Inbound:
    parsed = await read_image_form(request, gw, variation)
    try:
        payload = _fields_payload(parsed)
    except BaseException:
        await parsed.form.close()
        raise
    return Inbound(payload, b"", source=parsed, close=parsed.form.close, json=False)


async def _read_edit(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    return await _read(request, gw, variation=False)


async def _read_variation(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    return await _read(request, gw, variation=True)


# --- what billing reads, per model ----------------------------------------------


def is_dall_e_2(model: Model) -> bool:
    return model.id.startswith("dall-e-2")


def _edit_shape(inbound: Inbound, model: Model) -> CallShape:
    parsed: ImageForm = inbound.source
    asked = image_request(inbound.payload)
    if is_dall_e_2(model):
        _check_dall_e_2(model, parsed, inbound.payload, asked)
    elif one_image_a_call(model):
        _check_gemini_edit(model, parsed, inbound.payload, asked)
    images = len(parsed.images) + (parsed.mask is not None)
    return edit_shape(asked, model, images, inbound.payload.get("input_fidelity"))


def _check_dall_e_2(
    model: Model, parsed: ImageForm, payload: dict[str, Any], asked: ImageRequest | None
) -> None:
    """DALL-E 2 takes one square PNG under 4 MB and a prompt of 1,000 characters."""
    if len(parsed.images) > 1:
        raise bad_request(f"Model '{model.id}' takes one image.", param="image")
    image = parsed.images[0]
    if image.mime_type != PNG or image.size_bytes > DALL_E_2_MAX_BYTES:
        raise bad_request(f"Model '{model.id}' takes a square PNG under 4 MB.", param="image")
    width, height = image.dimensions or (0, 0)
    if width != height:
        raise bad_request(
            f"Model '{model.id}' takes a square image; this one is {width}x{height}.",
            param="image",
        )
    if asked is not None and len(asked.prompt) > DALL_E_2_MAX_PROMPT_CHARS:
        raise bad_request(
            f"Model '{model.id}' takes a prompt of at most {DALL_E_2_MAX_PROMPT_CHARS} characters.",
            param="prompt",
        )
    for name in GPT_IMAGE_ONLY:
        if name in payload:
            raise bad_request(
                f"'{name}' is for gpt-image models; model '{model.id}' does not take it "
                "(name a gpt-image model, e.g. gpt-image-1).",
                param=name,
            )


def _check_gemini_edit(
    model: Model, parsed: ImageForm, payload: dict[str, Any], asked: ImageRequest
) -> None:
    """What Gemini cannot do with an edit: a mask, or more inline bytes than
    its request takes (and what it cannot do with any image call)."""
    check_gemini(model, payload, asked)
    if parsed.mask is not None:
        raise bad_request(
            f"Model '{model.id}' edits by the prompt and takes no mask; leave 'mask' out.",
            param="mask",
        )
    if sum(image.size_bytes for image in parsed.images) > GEMINI_MAX_IMAGE_BYTES:
        raise bad_request(
            f"Model '{model.id}' takes at most {GEMINI_MAX_IMAGE_BYTES // MB} MB of images "
            "in a request.",
            param="image",
        )


def _variation_shape(inbound: Inbound, model: Model) -> CallShape:
    if not is_dall_e_2(model):
        raise bad_request(
            f"Only dall-e-2 makes image variations; model '{model.id}' does not. Use "
            "POST /v1/images/edits to change an image with a prompt.",
            param="model",
        )
    parsed: ImageForm = inbound.source
    _check_dall_e_2(model, parsed, inbound.payload, None)
    size = inbound.payload.get("size")
    if size is not None and size not in DALL_E_2_SIZES:
        raise bad_request(
            f"'size' must be one of {', '.join(DALL_E_2_SIZES)}; got {size[:64]!r}.",
            param="size",
        )
    return CallShape(body_bytes=0, n=inbound.payload.get("n", 1), image=ImageShape(size))


# --- forwarding -------------------------------------------------------------------


async def _forward_edit(call: Call, inbound: Inbound, request: Request) -> Response:
    image = call.shape.image or ImageShape()
    asked = ImageRequest(inbound.payload["prompt"], call.shape.n, image.size, image.quality)
    if one_image_a_call(call.model):
        return await _forward_gemini(call, inbound, request, asked)
    return await _forward_multipart(call, inbound, request, asked, EDITS)


async def _forward_variation(call: Call, inbound: Inbound, request: Request) -> Response:
    image = call.shape.image or ImageShape()
    asked = ImageRequest("", call.shape.n, image.size)
    return await _forward_multipart(call, inbound, request, asked, VARIATIONS)


async def _forward_multipart(
    call: Call, inbound: Inbound, request: Request, asked: ImageRequest, endpoint: str
) -> Response:
    """The form re-encoded for an OpenAI-compatible upstream, answered whole."""
    parsed: ImageForm = inbound.source
    held_inputs = call.shape.image.image_input_tokens if call.shape.image else 0
    async with released_on_failure(call):
        body, content_type = await encode_multipart(parsed.upstream_items(call.model.id))
    outbound = Outbound(endpoint, body, inbound.payload, content_type=content_type)
    return await forward_unary(
        call,
        outbound,
        items=lambda answer: images_made(answer, asked.n),
        estimate=lambda answer: estimate_usage(call.gw, asked, answer, held_inputs),
        usage=lambda answer: reported_usage(call, asked, answer),
        client_gone=request.is_disconnected,
    )


async def _forward_gemini(
    call: Call, inbound: Inbound, request: Request, asked: ImageRequest
) -> Response:
    """n generateContent calls, each with the prompt and every image inline."""
    parsed: ImageForm = inbound.source
    async with released_on_failure(call):
        images = [await _inline(image) for image in parsed.images]
    payload = {"model": call.model.id, "prompt": asked.prompt, "size": asked.size, "images": images}
    one_call = Inbound(payload, b"", json=False)
    image = call.shape.image or ImageShape()
    return await forward_each(
        call,
        one_call,
        output_bound=image_hold_tokens(image.size, image.quality),
        items=lambda answer: images_made(answer, 1),
        estimate=lambda answer: estimate_one(call.gw, asked, answer, len(images)),
        usage=lambda answer: reported_usage(call, asked, answer),
        client_gone=request.is_disconnected,
    )


async def _inline(upload: Upload) -> InputImage:
    await upload.file.seek(0)
    data = await upload.file.read()
    return InputImage(upload.mime_type, base64.b64encode(data).decode("ascii"))


EDIT = Metered(IMAGE_EDITS, EDITS, _edit_shape, _forward_edit, read=_read_edit)
VARIATION = Metered(
    IMAGE_VARIATIONS, VARIATIONS, _variation_shape, _forward_variation, read=_read_variation
)


async def image_edits(request: Request) -> Response:
    result: Response = await run(EDIT, request)
    return result


async def image_variations(request: Request) -> Response:
    result: Response = await run(VARIATION, request)
    return result
