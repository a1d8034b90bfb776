"""The OpenAI-compatible relay (/v1): metered calls forwarded upstream.

Every endpoint is listed once, in ``ENDPOINTS``, with the protocol whose
shape its errors take. Those with a fixed path are served by the fast path
(fastpath.py); those with a parameter in their path by Starlette's router.
Both answer errors the same way.
"""

from __future__ import annotations

from starlette.routing import Route

from tollway.relay import audio, gemini, messages, response_views, responses, video_views, videos
from tollway.relay.chat import chat_completions
from tollway.relay.completions import completions
from tollway.relay.embeddings import embeddings
from tollway.relay.fastpath import (
    RENDERS,
    Endpoint,
    Render,
    Served,
    answering_errors,
    errors_of_caller,
)
from tollway.relay.image_edits import image_edits, image_variations
from tollway.relay.images import image_generations
from tollway.relay.models import get_model, list_models
from tollway.relay.moderations import moderations
from tollway.relay.rerank import rerank

OPENAI = RENDERS["openai"]
ANTHROPIC = RENDERS["anthropic"]
GEMINI = RENDERS["gemini"]
CALLER = errors_of_caller  # GET /v1/models answers each SDK in its own shape

ENDPOINTS: tuple[tuple[str, str, Endpoint, Render], ...] = (
    ("POST", "/v1/chat/completions", chat_completions, OPENAI),
    ("POST", "/v1/messages", messages.messages, ANTHROPIC),
    ("POST", "/v1/messages/count_tokens", messages.count_tokens, ANTHROPIC),
    ("POST", "/v1/responses", responses.create_response, OPENAI),
    ("GET", "/v1/responses/{response_id}", response_views.retrieve_response, OPENAI),
    ("DELETE", "/v1/responses/{response_id}", response_views.delete_response, OPENAI),
    ("GET", "/v1/responses/{response_id}/input_items", response_views.list_input_items, OPENAI),
    ("POST", "/v1beta/models/{target:path}", gemini.models_action, GEMINI),
    ("POST", "/v1/models/{target:path}", gemini.models_action, GEMINI),
    ("POST", "/v1/embeddings", embeddings, OPENAI),
    ("POST", "/v1/completions", completions, OPENAI),
    ("POST", "/v1/moderations", moderations, OPENAI),
    ("POST", "/v1/rerank", rerank, OPENAI),
    ("POST", "/v1/images/generations", image_generations, OPENAI),
    ("POST", "/v1/images/edits", image_edits, OPENAI),
    ("POST", "/v1/images/variations", image_variations, OPENAI),
    ("POST", "/v1/audio/speech", audio.speech, OPENAI),
    ("POST", "/v1/audio/transcriptions", audio.transcriptions, OPENAI),
    ("POST", "/v1/audio/translations", audio.translations, OPENAI),
    ("GET", "/v1/models", list_models, CALLER),
    ("GET", "/v1/models/{model:path}", get_model, CALLER),
    ("GET", "/v1beta/models", list_models, GEMINI),
    ("GET", "/v1beta/models/{model:path}", get_model, GEMINI),
    ("POST", "/v1/videos", videos.create_video, OPENAI),
    ("GET", "/v1/videos", video_views.list_videos, OPENAI),
    ("GET", "/v1/videos/{video_id}", video_views.retrieve_video, OPENAI),
    ("DELETE", "/v1/videos/{video_id}", video_views.delete_video, OPENAI),
    ("GET", "/v1/videos/{video_id}/content", video_views.video_content, OPENAI),
    ("POST", "/v1/videos/{video_id}/remix", videos.remix_video, OPENAI),
)


def _fixed(path: str) -> bool:
    return "{" not in path


def hot_endpoints() -> dict[tuple[str, str], Served]:
    """The endpoints with a fixed path, served in front of Starlette."""
    return {
        (method, path): (endpoint, render)
        for method, path, endpoint, render in ENDPOINTS
        if _fixed(path)
    }


def routes() -> list[Route]:
    """The endpoints with a parameter in their path, as Starlette routes."""
    return [
        Route(path, answering_errors((endpoint, render)), methods=[method])
        for method, path, endpoint, render in ENDPOINTS
        if not _fixed(path)
    ]
