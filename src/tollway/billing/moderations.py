"""What billing reads of a moderation request (``POST /v1/moderations``).

OpenAI's moderation is free; an operator may still price a moderation model
by input tokens. The input is held as its body's bytes (a token a byte, as
for every prompt: an image part's URL counts as text, more than the text it
is not), with no output; upstreams report no usage, so the gateway counts
the input's text when billing.
"""

from __future__ import annotations

from typing import Any

from tollway.billing.shapes import CallShape
from tollway.errors import bad_request

DEFAULT_MODEL = "omni-moderation-latest"  # what OpenAI moderates with when none is named
MAX_INPUTS = 2048
PART_TYPES = frozenset({"text", "image_url"})


def moderation_shape(payload: dict[str, Any], body_bytes: int) -> CallShape:
    check_input(payload.get("input"))
    return CallShape(body_bytes, max_output_tokens=0)


def check_input(value: Any) -> None:
    """A string, an array of strings, or an array of text and image parts."""
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not value or len(value) > MAX_INPUTS:
        raise bad_request(
            f"'input' must be a string or an array of 1 to {MAX_INPUTS} strings or parts.",
            param="input",
        )
    if all(isinstance(item, str) for item in value):
        return
    if not all(_part(item) for item in value):
        raise bad_request(
            '\'input\' must be all strings or all parts: {"type": "text", "text": ...} or '
            '{"type": "image_url", "image_url": {"url": ...}}.',
            param="input",
        )


def _part(item: Any) -> bool:
    if not isinstance(item, dict) or item.get("type") not in PART_TYPES:
        return False
    if item["type"] == "text":
        return isinstance(item.get("text"), str)
    image = item.get("image_url")
    return isinstance(image, dict) and isinstance(image.get("url"), str)


def input_text(value: Any) -> list[str]:
    """The input's texts (what a priced moderation is counted by)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    texts = []
    for item in value:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            texts.append(item["text"])
    return texts
