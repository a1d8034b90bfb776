"""Gemini's image models (generateContent with image output) behind OpenAI's
``/v1/images/generations`` and ``/v1/images/edits``: the request for one image
(an edit's input images inline after the prompt), the answer in OpenAI's
images shape with its usage, and why an answer holds no image."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tollway.protocols.gemini.fields import Json
from tollway.types import Usage

# The aspect ratios Gemini's image models take.
ASPECT_RATIOS = frozenset({"1:1", "3:2", "2:3", "4:3", "3:4", "4:5", "5:4", "16:9", "9:16", "21:9"})
# How far a size's ratio may be from the aspect ratio it is read as: Gemini's
# own sizes are near their ratio, not at it (16:9 is 1344x768, 3:4 864x1184),
# and so are OpenAI's (1792x1024 is 7:4).
_RATIO_TOLERANCE = Fraction(1, 20)
# The tokens Gemini reports for one image at its default size (2.5 Flash
# Image: 1,290 at any aspect ratio; the 3.x models: 1,120 at 1K).
IMAGE_TOKENS = 1290
# What an input image (an edit's) is counted at when Gemini reports no usage:
# 1,120 tokens, the 3.x models' count at high resolution (2.5 bills 258 a
# 768-px tile, 1,032 for a 1024-px square).
INPUT_IMAGE_TOKENS = 1120
# inlineData mime types as OpenAI's ``output_format`` names them.
_OUTPUT_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}
_SIZE = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")


def image_request_from_openai(prompt: str, n: int, size: str | None) -> Json:
    """The generateContent body for one image of ``prompt``.

    Gemini makes one image per call and has no count to ask for
    (``candidateCount`` is refused by its image models): for ``n`` images
    the caller sends this body ``n`` times. A ``size`` of ``WxH`` becomes
    ``imageConfig.aspectRatio`` when its ratio is one Gemini offers; any other
    size leaves the model's default."""
    return image_request(prompt, aspect_ratio(size))


def image_request(
    prompt: str,
    ratio: str | None,
    max_output_tokens: int | None = None,
    images: Sequence[InputImage] = (),
) -> Json:
    """The generateContent body for one image of ``prompt`` in ``ratio`` (None:
    the model's default); ``max_output_tokens`` bounds what the call generates
    (text, thoughts and the image). An edit's ``images`` follow the prompt as
    inline data parts, in the order sent."""
    config: Json = {"responseModalities": ["TEXT", "IMAGE"]}
    if max_output_tokens is not None:
        config["maxOutputTokens"] = max_output_tokens
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    parts: list[Json] = [{"text": prompt}]
    parts += [{"inline_data": {"mime_type": i.mime_type, "data": i.data}} for i in images]
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


@dataclass(frozen=True, slots=True)
class InputImage:
    """An image an edit sends: its mime type and its bytes in base64."""

    mime_type: str
    data: str


def aspect_ratio(size: str | None) -> str | None:
    found = _SIZE.fullmatch(size) if isinstance(size, str) else None
    if found is None:
        return None
    width, height = int(found[1]), int(found[2])
    divisor = math.gcd(width, height)
    ratio = f"{width // divisor}:{height // divisor}"
    return ratio if ratio in ASPECT_RATIOS else None


def closest_aspect_ratio(size: str | None) -> str | None:
    """The aspect ratio Gemini offers that a ``WxH`` size is (within 5%) read
    as: 1792x1024 is 16:9; None for any other size or value."""
    found = _SIZE.fullmatch(size) if isinstance(size, str) else None
    if found is None:
        return None
    wanted = Fraction(int(found[1]), int(found[2]))
    distance, ratio = min((abs(wanted / _value(r) - 1), r) for r in ASPECT_RATIOS)
    return ratio if distance <= _RATIO_TOLERANCE else None


def offered_ratios() -> str:
    """The aspect ratios Gemini offers, tallest first, for a message."""
    return ", ".join(sorted(ASPECT_RATIOS, key=_value))


def _value(ratio: str) -> Fraction:
    width, _, height = ratio.partition(":")
    return Fraction(int(width), int(height))


def image_answer_to_openai(answer: Json) -> tuple[Json, int]:
    """An images response (``data[].b64_json``) of the images a generateContent
    answer holds, and how many there are. Thought images (drafts a thinking
    image model shows on its way) are not the answer and are left out."""
    found = _images(answer)
    body: Json = {"created": int(time.time()), "data": [{"b64_json": data} for _, data in found]}
    formats = {_OUTPUT_FORMATS.get(mime) for mime, _ in found}
    if len(formats) == 1 and None not in formats:
        body["output_format"] = formats.pop()
    return body, len(found)


def image_usage_to_openai(usage: Usage) -> Json:
    """Usage as gpt-image answers report it: the prompt as text, the output
    split into image tokens and text (thoughts included)."""
    output = usage.output_tokens + usage.image_output_tokens
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"text_tokens": usage.input_tokens, "image_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {
            "text_tokens": usage.output_tokens,
            "image_tokens": usage.image_output_tokens,
        },
        "total_tokens": usage.input_tokens + output,
    }


def no_image_reason(answer: Json) -> str:
    """Why an answer holds no image: the prompt's block reason, the finish
    reason, and what the model said instead."""
    said = []
    feedback = answer.get("promptFeedback")
    if isinstance(feedback, dict) and isinstance(feedback.get("blockReason"), str):
        said.append(f"the prompt was blocked ({feedback['blockReason']})")
    candidates = answer.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        reason = candidate.get("finishReason") if isinstance(candidate, dict) else None
        if isinstance(reason, str):
            said.append(f"finish reason {reason}")
        text = " ".join(_texts(candidate)).strip()
        if text:
            said.append(f"the model said: {text[:300]}")
    return "; ".join(said) or "the answer held no candidate"


def _parts(candidate: Any) -> list[Any]:
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def _texts(candidate: Any) -> list[str]:
    """The candidate's visible text (its thoughts left out)."""
    found = []
    for part in _parts(candidate):
        if isinstance(part, dict) and part.get("thought") is not True:
            text = part.get("text")
            if isinstance(text, str):
                found.append(text)
    return found


def _images(answer: Json) -> list[tuple[str, str]]:
    """(mime type, base64 data) of each image in the answer."""
    found = []
    candidates = answer.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        for part in _parts(candidate):
            if isinstance(part, dict) and part.get("thought") is not True:
                inline: Any = part.get("inlineData")
                if _is_image(inline):
                    found.append((inline["mimeType"], inline["data"]))
    return found


def _is_image(inline: Any) -> bool:
    if not isinstance(inline, dict) or not isinstance(inline.get("data"), str):
        return False
    mime = inline.get("mimeType")
    return isinstance(mime, str) and mime.startswith("image/")
