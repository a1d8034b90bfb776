"""``POST /v1/moderations``: deterministic moderation results, no usage (as OpenAI).

One result per string of an array input; a multimodal array (text and image
parts) gives one result for all its parts. A text is flagged in a category
when it carries one of that category's trigger words (``FLAGGED_BY``), with
a score of 0.9; every other score is small and derived from the text's hash.
Image parts count in the image-capable categories only, never flagged.
Directives ride in the last text.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from .common import STATE, ApiError, begin_call, json_response, read_json
from .directives import DirectiveError, parse_directives

DEFAULT_MODEL = "omni-moderation-latest"
# The snapshot OpenAI answers with, by the name asked.
SNAPSHOTS = {
    "omni-moderation-latest": "omni-moderation-2024-09-26",
    "text-moderation-latest": "text-moderation-007",
    "text-moderation-stable": "text-moderation-007",
}
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
IMAGE_CATEGORIES = frozenset(
    {
        "self-harm",
        "self-harm/instructions",
        "self-harm/intent",
        "sexual",
        "violence",
        "violence/graphic",
    }
)
FLAGGED_BY = {"violence": ("kill", "attack"), "harassment": ("idiot",), "hate": ("hateful",)}
FLAGGED_SCORE = 0.9
MAX_INPUTS = 2048


def parse_input(raw: Any) -> list[tuple[str, int]]:
    """Each result's (text, image parts) to moderate."""
    if isinstance(raw, str):
        return [(raw, 0)]
    if not isinstance(raw, list) or not raw or len(raw) > MAX_INPUTS:
        raise ApiError(400, f"input must hold 1 to {MAX_INPUTS} items", param="input")
    if all(isinstance(item, str) for item in raw):
        return [(item, 0) for item in raw]
    texts, images = [], 0
    for item in raw:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif kind == "image_url" and isinstance(item.get("image_url"), dict):
            images += 1
        else:
            raise ApiError(400, "each input part must be a text or an image_url", param="input")
    return [(" ".join(texts), images)]


def result(text: str, images: int) -> dict[str, Any]:
    words = set(text.lower().split())
    digest = hashlib.blake2b(text.encode(), digest_size=len(CATEGORIES)).digest()
    scores = {name: round(digest[i] / 255 / 1000, 6) for i, name in enumerate(CATEGORIES)}
    for name, triggers in FLAGGED_BY.items():
        if words.intersection(triggers):
            scores[name] = FLAGGED_SCORE
    flags = {name: score >= FLAGGED_SCORE for name, score in scores.items()}
    applied = {
        name: ["text", "image"] if images and name in IMAGE_CATEGORIES else ["text"]
        for name in CATEGORIES
    }
    return {
        "flagged": any(flags.values()),
        "categories": flags,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


async def moderations(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    model = body.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model must be a string", param="model")
    inputs = parse_input(body.get("input"))
    try:
        directives = parse_directives(inputs[-1][0])
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="input") from exc
    await begin_call(state, directives)
    return json_response(
        {
            "id": state.new_id("modr"),
            "model": SNAPSHOTS.get(model, model),
            "results": [result(text, images) for text, images in inputs],
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/moderations", moderations)
