"""``POST /v1/images/generations``, ``/edits`` and ``/variations``: deterministic
small PNGs, usage for gpt-image models.

Each image is a real PNG (see ``media``) that depends only on (prompt, index,
resolved size): the same request gives the same bytes. The PNG is at most
16 pixels on its longer side, with the aspect ratio of the requested size.
The bytes are always PNG: ``output_format`` is validated and echoed, not
honoured.

Model families (by the model id, after any ``provider/`` prefix):

- ``gpt-image*``: size ``auto|1024x1024|1536x1024|1024x1536`` (``auto`` is
  1024x1024), quality ``auto|low|medium|high`` (``auto`` is billed and echoed
  as ``medium``), n 1-10; always ``b64_json`` whatever ``response_format``
  says; the response echoes ``background`` (``auto`` -> ``opaque``),
  ``output_format`` (default ``png``), ``quality`` and ``size``, and carries
  ``usage``.
- ``dall-e-3``: size ``1024x1024|1792x1024|1024x1792``, quality
  ``standard|hd``, n must be 1; ``revised_prompt`` is the prompt.
- ``dall-e-2``: size ``256x256|512x512|1024x1024``, quality ``standard``.
- anything else: any ``WxH`` size (``auto`` is 1024x1024), any of the
  qualities above, n 1-10.

DALL-E and unknown families default to ``response_format: url`` (OpenAI's
default); the url points at this simulator (``GET /_sim/files/{name}``, no
api key needed, like a pre-signed blob url). No usage for them.

gpt-image usage (a fixed rule a test can compute; the per-image output tokens
are OpenAI's published table):

    input_tokens  = text_tokens = whitespace-separated words of the prompt
                    (``[sim:...]`` directives count as words, as in chat)
    image_tokens  = 0 (generations take no input image)
    output_tokens = n * OpenAI's per-image table[quality][size]
    total_tokens  = input_tokens + output_tokens

Directives in the prompt: ``[sim:error=STATUS]``, ``[sim:latency_ms=N]``,
``[sim:no_usage]`` (other chat directives are accepted and ignored).

``POST /v1/images/edits`` (multipart/form-data, as the openai SDK sends it):
``image`` (one file), ``image[]`` (several) or ``image[N]``, ``mask``,
``prompt`` and the generations fields as text. OpenAI's input rules: png,
jpeg or webp; dall-e-2 one square png under 4 MB; gpt-image up to 16 images
under 50 MB each; a mask is a png under 4 MB; gpt-image-1-mini takes
``input_fidelity`` low only; ``stream: true`` is refused. The answer is the
generations answer; gpt-image usage adds the input images:

    image_tokens  = sum over images of 65 + 129 x 512-px tiles (the image, by
                    its PNG header, else as 1024x1024, fitted in 2048x2048 and
                    its short side brought down to 512), + 4,160 (square) or
                    6,240 (other) each with ``input_fidelity: high``
    input_tokens  = text_tokens + image_tokens

``POST /v1/images/variations``: one square png (``image``), dall-e-2 only,
``n``, ``size``, ``response_format``; no prompt, no usage.

``image_uploads`` reads the multipart body and counts an input image's tokens.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .common import (
    STATE,
    ApiError,
    begin_call,
    int_param,
    json_response,
    read_json,
    usage_wanted,
)
from .directives import DirectiveError, Directives, parse_directives
from .image_uploads import Upload, input_image_tokens, read_form
from .media import parse_size, png_for_size

MAX_N = 10
MAX_FILES = 10_000  # url-served images kept (about 1 KB each)
DEFAULT_SIZE = "1024x1024"
AUTO_QUALITY = "medium"  # what gpt-image ``quality: auto`` bills as

# OpenAI's gpt-image-1 output tokens per image, by quality and size.
GPT_IMAGE_OUTPUT_TOKENS: dict[str, dict[str, int]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}

_RESPONSE_FORMATS = frozenset({"url", "b64_json"})
_BACKGROUNDS = frozenset({"transparent", "opaque", "auto"})
_OUTPUT_FORMATS = frozenset({"png", "jpeg", "webp"})
_STYLES = frozenset({"vivid", "natural"})
_ALL_QUALITIES = frozenset({"auto", "low", "medium", "high", "standard", "hd"})


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    sizes: frozenset[str] | None  # None: any WxH (and auto)
    qualities: frozenset[str]
    default_quality: str
    max_n: int


GPT_IMAGE = Family(
    "gpt-image",
    frozenset({"auto", "1024x1024", "1536x1024", "1024x1536"}),
    frozenset({"auto", "low", "medium", "high"}),
    "auto",
    MAX_N,
)
DALL_E_3 = Family(
    "dall-e-3",
    frozenset({"1024x1024", "1792x1024", "1024x1792"}),
    frozenset({"standard", "hd"}),
    "standard",
    1,
)
DALL_E_2 = Family(
    "dall-e-2",
    frozenset({"256x256", "512x512", "1024x1024"}),
    frozenset({"standard"}),
    "standard",
    MAX_N,
)
OTHER = Family("other", None, _ALL_QUALITIES, "auto", MAX_N)


def family_of(model: str) -> Family:
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith("gpt-image"):
        return GPT_IMAGE
    if name.startswith("dall-e-3"):
        return DALL_E_3
    if name.startswith("dall-e-2"):
        return DALL_E_2
    return OTHER


class FileStore:
    """Bytes served at ``/_sim/files/{name}``; the oldest go first past ``limit``."""

    def __init__(self, limit: int = MAX_FILES) -> None:
        self.limit = limit
        self._files: OrderedDict[str, bytes] = OrderedDict()

    def put(self, name: str, data: bytes) -> None:
        self._files[name] = data
        self._files.move_to_end(name)
        while len(self._files) > self.limit:
            self._files.popitem(last=False)

    def get(self, name: str) -> bytes | None:
        return self._files.get(name)

    def __len__(self) -> int:
        return len(self._files)


FILES = web.AppKey("tollway_simulator_files", FileStore)
_CONTENT_TYPES = {"png": "image/png", "mp4": "video/mp4", "webp": "image/webp"}


def _choice(body: dict[str, Any], name: str, allowed: frozenset[str]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise ApiError(
            400,
            f"Invalid value for '{name}': {value!r}. Supported values are: "
            + ", ".join(repr(v) for v in sorted(allowed))
            + ".",
            param=name,
            code="invalid_value",
        )
    return value


def resolve_size(family: Family, raw: Any) -> str:
    """The concrete ``WxH`` for the request (``auto`` and absent: 1024x1024)."""
    if raw is None or (raw == "auto" and (family.sizes is None or "auto" in family.sizes)):
        return DEFAULT_SIZE
    if not isinstance(raw, str):
        raise ApiError(400, f"Invalid value for 'size': {raw!r}.", param="size")
    if family.sizes is None:
        if parse_size(raw) is None:
            raise ApiError(
                400,
                f"Invalid value for 'size': {raw!r}. Use WIDTHxHEIGHT, e.g. '1024x1024'.",
                param="size",
                code="invalid_value",
            )
        return raw
    if raw not in family.sizes:
        raise ApiError(
            400,
            f"Invalid value for 'size': {raw!r}. Supported values for {family.name} are: "
            + ", ".join(repr(s) for s in sorted(family.sizes))
            + ".",
            param="size",
            code="invalid_value",
        )
    return raw


def output_tokens_per_image(quality: str, size: str) -> int:
    """gpt-image output tokens for one image; ``auto`` quality counts as ``medium``."""
    if quality == "auto":
        quality = AUTO_QUALITY
    return GPT_IMAGE_OUTPUT_TOKENS[quality][size]


def image_usage(prompt: str, quality: str, size: str, n: int) -> dict[str, Any]:
    text_tokens = len(prompt.split())
    output = output_tokens_per_image(quality, size) * n
    return {
        "input_tokens": text_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
        "total_tokens": text_tokens + output,
    }


def image_bytes(prompt: str, index: int, size: str) -> bytes:
    width, height = parse_size(size) or (1024, 1024)
    return png_for_size(f"{prompt}\x00{index}\x00{size}", width, height)


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """A checked generations request."""

    prompt: str
    family: Family
    n: int
    size: str
    quality: str
    response_format: str
    background: str | None
    output_format: str | None
    directives: Directives


def parse_request(body: dict[str, Any]) -> ImageRequest:
    """The request's fields checked against its model family, or a 400."""
    model = body.get("model")
    if model is None:
        model = "dall-e-2"  # OpenAI's default for this endpoint
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model must be a non-empty string", param="model")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "you must provide a non-empty prompt", param="prompt")
    family = family_of(model)
    n = int_param(body, "n", 1, MAX_N) or 1
    if n > family.max_n:
        raise ApiError(400, f"{family.name} supports n={family.max_n} only, got n={n}", param="n")
    size = resolve_size(family, body.get("size"))
    quality = _choice(body, "quality", family.qualities) or family.default_quality
    response_format = _choice(body, "response_format", _RESPONSE_FORMATS) or "url"
    background = _choice(body, "background", _BACKGROUNDS)
    output_format = _choice(body, "output_format", _OUTPUT_FORMATS)
    _choice(body, "style", _STYLES)
    int_param(body, "output_compression", 0, 100)
    try:
        directives = parse_directives(prompt)
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="prompt") from exc
    return ImageRequest(
        prompt, family, n, size, quality, response_format, background, output_format, directives
    )


def _image_item(request: web.Request, wanted: ImageRequest, index: int) -> dict[str, Any]:
    """One ``data`` entry: a url served by this simulator, or the PNG inline."""
    png = image_bytes(wanted.prompt, index, wanted.size)
    # gpt-image always answers b64_json, whatever response_format says.
    if wanted.response_format == "url" and wanted.family is not GPT_IMAGE:
        name = "img_" + hashlib.blake2b(png, digest_size=12).hexdigest() + ".png"
        request.app[FILES].put(name, png)
        item: dict[str, Any] = {"url": f"{request.scheme}://{request.host}/_sim/files/{name}"}
    else:
        item = {"b64_json": base64.b64encode(png).decode("ascii")}
    if wanted.family is DALL_E_3:
        item["revised_prompt"] = wanted.prompt
    return item


def _gpt_image_echo(wanted: ImageRequest) -> dict[str, Any]:
    """The settings a gpt-image response echoes, ``auto`` resolved."""
    background = wanted.background
    return {
        "background": "opaque" if background in (None, "auto") else background,
        "output_format": wanted.output_format or "png",
        "quality": AUTO_QUALITY if wanted.quality == "auto" else wanted.quality,
        "size": wanted.size,
    }


async def generations(request: web.Request) -> web.Response:
    state = request.app[STATE]
    wanted = parse_request(await read_json(request))
    await begin_call(state, wanted.directives)
    data = [_image_item(request, wanted, index) for index in range(wanted.n)]
    out: dict[str, Any] = {"created": int(time.time()), "data": data}
    if wanted.family is GPT_IMAGE:
        out.update(_gpt_image_echo(wanted))
        if usage_wanted(state, wanted.directives):
            out["usage"] = image_usage(wanted.prompt, wanted.quality, wanted.size, wanted.n)
    return json_response(out)


async def get_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    data = request.app[FILES].get(name)
    if data is None:
        raise ApiError(404, f"No simulated file named {name!r} (it may have been evicted).")
    extension = name.rsplit(".", 1)[-1]
    return web.Response(
        body=data, content_type=_CONTENT_TYPES.get(extension, "application/octet-stream")
    )


# --- edits and variations (multipart) -------------------------------------------

MAX_INPUT_IMAGES = 16  # gpt-image models
MAX_INPUT_BYTES = 50 * 1024 * 1024  # each, for gpt-image models
DALL_E_2_MAX_BYTES = 4 * 1024 * 1024  # DALL-E 2's image, and any mask
_FIDELITIES = frozenset({"low", "high"})


def _images_of(files: list[Upload], names: tuple[str, ...]) -> list[Upload]:
    return [f for f in files if f.name in names or f.name.startswith("image[")]


def _check_inputs(family: Family, images: list[Upload], mask: Upload | None) -> None:
    """OpenAI's rules for the input images of each family."""
    if not images:
        raise ApiError(400, "you must provide an image", param="image")
    for upload in images:
        if upload.kind is None:
            raise ApiError(
                400,
                f"Invalid image file {upload.filename!r}: supported formats are png, jpeg, webp.",
                param="image",
                code="invalid_image_format",
            )
    if family is DALL_E_2:
        first = images[0]
        width, height = first.dimensions
        if len(images) > 1 or first.kind != "png" or len(first.data) > DALL_E_2_MAX_BYTES:
            raise ApiError(400, "dall-e-2 takes one square png image under 4 MB", param="image")
        if width != height:
            raise ApiError(400, "Uploaded image must be square for dall-e-2", param="image")
    elif len(images) > MAX_INPUT_IMAGES or any(len(i.data) > MAX_INPUT_BYTES for i in images):
        raise ApiError(400, "up to 16 images of under 50 MB each", param="image")
    if mask is not None and (mask.kind != "png" or len(mask.data) > DALL_E_2_MAX_BYTES):
        raise ApiError(400, "the mask must be a png under 4 MB", param="mask")


async def edits(request: web.Request) -> web.Response:
    state = request.app[STATE]
    fields, files = await read_form(request)
    wanted = parse_request(fields)
    images = _images_of(files, ("image",))
    masks = [f for f in files if f.name == "mask"]
    _check_inputs(wanted.family, images, masks[0] if masks else None)
    fidelity = _choice(fields, "input_fidelity", _FIDELITIES) or "low"
    int_param(fields, "partial_images", 0, 3)
    if fidelity == "high" and str(fields.get("model", "")).startswith("gpt-image-1-mini"):
        raise ApiError(
            400, "gpt-image-1-mini supports input_fidelity 'low' only", param="input_fidelity"
        )
    if fields.get("stream") == "true":
        raise ApiError(400, "the simulator does not stream image edits", param="stream")
    await begin_call(state, wanted.directives)
    data = [_image_item(request, wanted, index) for index in range(wanted.n)]
    out: dict[str, Any] = {"created": int(time.time()), "data": data}
    if wanted.family is GPT_IMAGE:
        out.update(_gpt_image_echo(wanted))
        if usage_wanted(state, wanted.directives):
            usage = image_usage(wanted.prompt, wanted.quality, wanted.size, wanted.n)
            image_tokens = sum(input_image_tokens(image, fidelity) for image in images)
            usage["input_tokens"] += image_tokens
            usage["input_tokens_details"]["image_tokens"] = image_tokens
            usage["total_tokens"] += image_tokens
            out["usage"] = usage
    return json_response(out)


async def variations(request: web.Request) -> web.Response:
    """DALL-E 2's variations: one square png, n images, no usage."""
    fields, files = await read_form(request)
    model = fields.get("model") or "dall-e-2"
    if family_of(str(model)) is not DALL_E_2:
        raise ApiError(400, f"variations are made by dall-e-2 only, not {model!r}", param="model")
    _check_inputs(DALL_E_2, _images_of(files, ("image",)), None)
    prompt = f"variation of {files[0].filename}"
    wanted = parse_request({**fields, "model": model, "prompt": prompt})
    await begin_call(request.app[STATE], wanted.directives)
    data = [_image_item(request, wanted, index) for index in range(wanted.n)]
    return json_response({"created": int(time.time()), "data": data})


def setup(app: web.Application) -> None:
    app[FILES] = FileStore()
    app.router.add_post("/v1/images/generations", generations)
    app.router.add_post("/v1/images/edits", edits)
    app.router.add_post("/v1/images/variations", variations)
    app.router.add_get("/_sim/files/{name}", get_file)
