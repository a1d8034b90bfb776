"""``POST /v1/embeddings``: deterministic unit vectors derived from each input.

Each vector comes from SHAKE-256 of the input, whose output prefix does not
depend on the requested length; so, as with OpenAI's ``dimensions``, a short
vector is the re-normalised prefix of a longer one. Values are rounded to
float32 so ``float`` and ``base64`` (float32 little-endian) agree exactly.
Tokens: words of a string input, length of a token array.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from typing import Any

import orjson
from aiohttp import web

from .common import (
    STATE,
    ApiError,
    begin_call,
    int_param,
    json_response,
    read_json,
    require_model,
    usage_wanted,
)
from .directives import NO_DIRECTIVES, DirectiveError, Directives, parse_directives

MAX_INPUTS = 2048
MAX_DIMENSIONS = 65536
_BIG_ENDIAN = sys.byteorder == "big"

EmbeddingInput = str | list[int]


def parse_inputs(raw: Any) -> list[EmbeddingInput]:
    """``input`` as a string, a list of strings, a token array or a list of them."""
    if isinstance(raw, str):
        raw = [raw]
    elif isinstance(raw, list) and raw and all(_is_token(t) for t in raw):
        raw = [raw]  # one token array
    if not isinstance(raw, list) or not raw or len(raw) > MAX_INPUTS:
        raise ApiError(400, f"input must hold 1 to {MAX_INPUTS} items", param="input")
    for item in raw:
        if not (isinstance(item, str) and item) and not (
            isinstance(item, list) and item and all(_is_token(t) for t in item)
        ):
            raise ApiError(
                400,
                "each input must be a non-empty string or array of token ids",
                param="input",
            )
    return raw


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def input_tokens(item: EmbeddingInput) -> int:
    return len(item.split()) if isinstance(item, str) else len(item)


def vector_bytes(item: EmbeddingInput, dimensions: int) -> bytes:
    """The float32 little-endian bytes of a unit vector for ``item``."""
    key = item.encode() if isinstance(item, str) else orjson.dumps(item)
    raw = array("h", hashlib.shake_256(key).digest(2 * dimensions))
    if _BIG_ENDIAN:
        raw.byteswap()  # the digest is read as little-endian int16 everywhere
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    vector = array("f", [x / norm for x in raw])
    if _BIG_ENDIAN:
        vector.byteswap()
    return vector.tobytes()


def encode_vector(data: bytes, encoding_format: str) -> str | list[float]:
    if encoding_format == "base64":
        return base64.b64encode(data).decode("ascii")
    vector = array("f", data)
    if _BIG_ENDIAN:
        vector.byteswap()
    return vector.tolist()


def _directives(inputs: list[EmbeddingInput]) -> Directives:
    """Directives ride in the last string input, as they do in chat's last message."""
    last = inputs[-1]
    if not isinstance(last, str):
        return NO_DIRECTIVES
    try:
        return parse_directives(last)
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="input") from exc


async def embeddings(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    model = require_model(body)
    inputs = parse_inputs(body.get("input"))
    dimensions = int_param(body, "dimensions", 1, MAX_DIMENSIONS)
    encoding_format = body.get("encoding_format") or "float"
    if encoding_format not in ("float", "base64"):
        raise ApiError(400, "encoding_format must be 'float' or 'base64'", param="encoding_format")
    directives = _directives(inputs)
    await begin_call(state, directives)
    dims = dimensions or state.config.embedding_dimensions
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": encode_vector(vector_bytes(item, dims), encoding_format),
        }
        for index, item in enumerate(inputs)
    ]
    out: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage_wanted(state, directives):
        tokens = sum(input_tokens(item) for item in inputs)
        out["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_response(out)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/embeddings", embeddings)
