"""The OpenAI-compatible relay (/v1): metered calls forwarded upstream.

Every /v1 endpoint is listed once, in ``ENDPOINTS``. Those with a fixed path
are served by the fast path (fastpath.py); those with a parameter in their
path by Starlette's router. Both answer errors the same way.
"""

from __future__ import annotations

from starlette.routing import Route

from tollway.relay import video_views, videos
from tollway.relay.chat import chat_completions
from tollway.relay.embeddings import embeddings
from tollway.relay.fastpath import Endpoint, answering_errors
from tollway.relay.images import image_generations
from tollway.relay.models import get_model, list_models

ENDPOINTS: tuple[tuple[str, str, Endpoint], ...] = (
    ("POST", "/v1/chat/completions", chat_completions),
    ("POST", "/v1/embeddings", embeddings),
    ("POST", "/v1/images/generations", image_generations),
    ("GET", "/v1/models", list_models),
    ("GET", "/v1/models/{model:path}", get_model),
    ("POST", "/v1/videos", videos.create_video),
    ("GET", "/v1/videos", video_views.list_videos),
    ("GET", "/v1/videos/{video_id}", video_views.retrieve_video),
    ("DELETE", "/v1/videos/{video_id}", video_views.delete_video),
    ("GET", "/v1/videos/{video_id}/content", video_views.video_content),
    ("POST", "/v1/videos/{video_id}/remix", videos.remix_video),
)


def _fixed(path: str) -> bool:
    return "{" not in path


def hot_endpoints() -> dict[tuple[str, str], Endpoint]:
    """The endpoints with a fixed path, served in front of Starlette."""
    return {(method, path): endpoint for method, path, endpoint in ENDPOINTS if _fixed(path)}


def routes() -> list[Route]:
    """The endpoints with a parameter in their path, as Starlette routes."""
    return [
        Route(path, answering_errors(endpoint), methods=[method])
        for method, path, endpoint in ENDPOINTS
        if not _fixed(path)
    ]
