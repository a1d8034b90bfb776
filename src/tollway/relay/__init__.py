"""The OpenAI-compatible relay (/v1): metered calls forwarded upstream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from tollway.errors import ApiError
from tollway.relay import videos
from tollway.relay.chat import chat_completions
from tollway.relay.embeddings import embeddings
from tollway.relay.images import image_generations
from tollway.relay.models import get_model, list_models

Endpoint = Callable[[Request], Awaitable[Any]]


def _answering_errors(endpoint: Endpoint) -> Endpoint:
    async def wrapped(request: Request) -> Any:
        try:
            return await endpoint(request)
        except ApiError as error:
            return error.response()

    return wrapped


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
        Route("/v1/models", _answering_errors(list_models), methods=["GET"]),
        Route("/v1/models/{model:path}", _answering_errors(get_model), methods=["GET"]),
        Route("/v1/chat/completions", _answering_errors(chat_completions), methods=["POST"]),
        Route("/v1/embeddings", _answering_errors(embeddings), methods=["POST"]),
        Route("/v1/images/generations", _answering_errors(image_generations), methods=["POST"]),
        *videos.routes(),
    ]
