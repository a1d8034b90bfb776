"""Gemini's image models (generateContent with image output) behind OpenAI's
``/v1/images/generations``."""

from __future__ import annotations

import math
import re
import time
from typing import Any

from tollway.protocols.gemini.fields import Json

# The aspect ratios Gemini's image models take.
ASPECT_RATIOS = frozenset({"1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16", "21:9"})
_SIZE = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")


def image_request_from_openai(prompt: str, n: int, size: str | None) -> Json:
    """The generateContent body for one image of ``prompt``.

    Gemini makes one image per call and has no count to ask for
    (``candidateCount`` is refused by its image models): for ``n`` images
    the caller sends this body ``n`` times. A ``size`` of ``WxH`` becomes
    ``imageConfig.aspectRatio`` when its ratio is one Gemini offers; any other
    size leaves the model's default."""
    config: Json = {"responseModalities": ["TEXT", "IMAGE"]}
    ratio = aspect_ratio(size)
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}


def aspect_ratio(size: str | None) -> str | None:
    found = _SIZE.fullmatch(size) if isinstance(size, str) else None
    if found is None:
        return None
    width, height = int(found[1]), int(found[2])
    divisor = math.gcd(width, height)
    ratio = f"{width // divisor}:{height // divisor}"
    return ratio if ratio in ASPECT_RATIOS else None


def image_answer_to_openai(answer: Json) -> tuple[Json, int]:
    """An images response (``data[].b64_json``) of the images a generateContent
    answer holds, and how many there are. Thought images (drafts a thinking
    image model shows on its way) are not the answer and are left out."""
    images = [{"b64_json": data} for data in _image_data(answer)]
    return {"created": int(time.time()), "data": images}, len(images)


def _image_data(answer: Json) -> list[str]:
    found = []
    candidates = answer.get("candidates")
    for candidate in candidates if isinstance(candidates, list) else ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict) and part.get("thought") is not True:
                inline: Any = part.get("inlineData")
                if _is_image(inline):
                    found.append(inline["data"])
    return found


def _is_image(inline: Any) -> bool:
    if not isinstance(inline, dict) or not isinstance(inline.get("data"), str):
        return False
    mime = inline.get("mimeType")
    return isinstance(mime, str) and mime.startswith("image/")
