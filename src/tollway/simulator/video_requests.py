"""Reading and checking the body of a ``/v1/videos`` create or remix call.

Bodies come as JSON, as multipart/form-data (how the openai SDK sends them)
or urlencoded; an uploaded file (``input_reference``) is summarised, not kept.

Models whose id (after any ``provider/`` prefix) starts with ``sora-2`` take
``seconds`` 4|8|12 and the four Sora sizes; other models (``sora_video2``,
``veo-...``) take any positive whole number of seconds (up to 3600) and any
``WxH``.

Prompt directives that steer the job, besides the chat ones
(``[sim:error=STATUS]``, ``[sim:latency_ms=N]``: the call itself fails or
waits):

- ``[sim:video_fail]``         this job fails
- ``[sim:video_queue_ms=N]``   this job queues N ms
- ``[sim:video_render_ms=N]``  this job renders N ms
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .common import STATE, ApiError, read_json
from .directives import DirectiveError, Directives, parse_directives
from .media import parse_size

DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"
SORA_SECONDS = frozenset({"4", "8", "12"})
SORA_SIZES = frozenset({"720x1280", "1280x720", "1024x1792", "1792x1024"})
MAX_SECONDS = 3600

_VIDEO_DIRECTIVE = re.compile(r"\[sim:(video_[a-z_]+)(?:=([^\]]*))?\]")
DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class VideoDirectives:
    fail: bool = False
    queue_ms: int | None = None
    render_ms: int | None = None


def split_directives(prompt: str) -> tuple[Directives, VideoDirectives]:
    """The chat directives and the ``[sim:video_*]`` ones of a prompt (400 on a bad one)."""
    found: dict[str, Any] = {}

    def take(match: re.Match[str]) -> str:
        key, raw = match.group(1), match.group(2)
        if key == "video_fail":
            if raw is not None:
                raise DirectiveError("[sim:video_fail] takes no value")
            found["fail"] = True
        elif key in ("video_queue_ms", "video_render_ms"):
            if raw is None or not DIGITS.fullmatch(raw):
                raise DirectiveError(f"[sim:{key}=...] needs a non-negative integer, got {raw!r}")
            found[key.removeprefix("video_")] = int(raw)
        else:
            raise DirectiveError(f"unknown simulator directive [sim:{key}]")
        return " "

    try:
        rest = _VIDEO_DIRECTIVE.sub(take, prompt)
        return parse_directives(rest), VideoDirectives(**found)
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="prompt") from exc


async def read_body(request: web.Request) -> dict[str, Any]:
    """A JSON, multipart or urlencoded body as a dict; uploaded files are summarised."""
    if request.content_type == "multipart/form-data":
        fields = await _read_multipart(request)
    elif request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
    else:
        return await read_json(request)
    # For /_sim/requests, as read_json records a JSON body.
    request.app[STATE].stats.recent.append(
        {"method": request.method, "path": request.path, "body": fields}
    )
    return fields


async def _read_multipart(request: web.Request) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                data = await part.read()
                fields[part.name] = {
                    "filename": part.filename,
                    "content_type": part.headers.get("Content-Type"),
                    "bytes": len(data),
                }
            else:
                fields[part.name] = await part.text()
    except (ValueError, AssertionError) as exc:
        raise ApiError(400, f"We could not parse the multipart body: {exc}") from exc
    return fields


def prompt_of(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "you must provide a non-empty prompt", param="prompt")
    return prompt


def model_of(body: dict[str, Any]) -> str:
    model = body.get("model") or DEFAULT_MODEL
    if not isinstance(model, str):
        raise ApiError(400, "model must be a string", param="model")
    return model


def is_sora(model: str) -> bool:
    return model.rsplit("/", 1)[-1].lower().startswith("sora-2")


def seconds_of(raw: Any, sora: bool) -> str:
    if raw is None or raw == "":
        return DEFAULT_SECONDS
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if sora and isinstance(raw, str) and raw not in SORA_SECONDS:
        raise ApiError(
            400,
            f"Invalid value for 'seconds': {raw!r}. Supported values are: '4', '8', and '12'.",
            param="seconds",
            code="invalid_value",
        )
    if not isinstance(raw, str) or not DIGITS.fullmatch(raw) or not 0 < int(raw) <= MAX_SECONDS:
        raise ApiError(
            400,
            f"Invalid value for 'seconds': {raw!r}. Use a whole number of seconds "
            f"from 1 to {MAX_SECONDS}, as a string.",
            param="seconds",
            code="invalid_value",
        )
    return str(int(raw))


def size_of(raw: Any, sora: bool) -> str:
    if raw is None or raw == "":
        return DEFAULT_SIZE
    if sora and isinstance(raw, str) and raw not in SORA_SIZES:
        raise ApiError(
            400,
            f"Invalid value for 'size': {raw!r}. Supported values are: "
            + ", ".join(repr(s) for s in sorted(SORA_SIZES))
            + ".",
            param="size",
            code="invalid_value",
        )
    if not isinstance(raw, str) or parse_size(raw) is None:
        raise ApiError(
            400,
            f"Invalid value for 'size': {raw!r}. Use WIDTHxHEIGHT, e.g. '1280x720'.",
            param="size",
            code="invalid_value",
        )
    return raw
