"""The OpenAI-compatible relay (/v1): metered calls forwarded upstream."""

from __future__ import annotations

from starlette.routing import Route

from tollway.relay import videos
from tollway.relay.chat import chat_completions
from tollway.relay.embeddings import embeddings
from tollway.relay.fastpath import Endpoint, answering_errors
from tollway.relay.images import image_generations
from tollway.relay.models import get_model, list_models


def hot_endpoints() -> dict[tuple[str, str], Endpoint]:
    """The calls served in front of Starlette (see fastpath.py)."""
    return {
        ("POST", "/v1/chat/completions"): chat_completions,
        ("POST", "/v1/embeddings"): embeddings,
        ("POST", "/v1/images/generations"): image_generations,
        ("GET", "/v1/models"): list_models,
    }


def routes() -> list[Route]:
    return [
        Route("/v1/models", answering_errors(list_models), methods=["GET"]),
        Route("/v1/models/{model:path}", answering_errors(get_model), methods=["GET"]),
        Route("/v1/chat/completions", answering_errors(chat_completions), methods=["POST"]),
        Route("/v1/embeddings", answering_errors(embeddings), methods=["POST"]),
        Route("/v1/images/generations", answering_errors(image_generations), methods=["POST"]),
        *videos.routes(),
    ]
