"""Which model kinds each metered endpoint serves.

A model sent to an endpoint of another kind (a video model to chat, an
embedding model to images) is refused before anything is held or sent: a 400
naming the endpoint its kind is served by. Without this, the call would be
priced as if the endpoint made what the model makes (sora-2's per-second
price on a chat call has no seconds: a 500), or billed a default it never
asked for (dall-e-3 on chat).

Audio models are chat's: the catalog's audio kind is mostly chat-completions
models (gpt-audio, gpt-4o-audio-preview), and the gateway has no audio
endpoint; an audio model the upstream does not serve on chat gets the
upstream's own 4xx, passed on. Speech models (tts-1, gpt-4o-mini-tts) are
served by /v1/audio/speech and transcribers (whisper-1, gpt-4o-transcribe) by
/v1/audio/transcriptions and /translations: kinds of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tollway.errors import ApiError, bad_request
from tollway.types import Model, ModelKind


@dataclass(frozen=True, slots=True)
class MeteredEndpoint:
    """A metered /v1 endpoint: how it is called, and the model kinds it serves."""

    route: str  # "POST /v1/chat/completions"
    kinds: frozenset[ModelKind]


CHAT = MeteredEndpoint(
    "POST /v1/chat/completions",
    frozenset({ModelKind.TEXT, ModelKind.MULTIMODAL, ModelKind.AUDIO}),
)
RESPONSES = MeteredEndpoint("POST /v1/responses", CHAT.kinds)  # chat's models, Responses' shape
EMBEDDINGS = MeteredEndpoint("POST /v1/embeddings", frozenset({ModelKind.EMBEDDING}))
IMAGES = MeteredEndpoint("POST /v1/images/generations", frozenset({ModelKind.IMAGE}))
IMAGE_EDITS = MeteredEndpoint("POST /v1/images/edits", IMAGES.kinds)
IMAGE_VARIATIONS = MeteredEndpoint("POST /v1/images/variations", IMAGES.kinds)
VIDEOS = MeteredEndpoint("POST /v1/videos", frozenset({ModelKind.VIDEO}))
REMIX = MeteredEndpoint("POST /v1/videos/{id}/remix", VIDEOS.kinds)
SPEECH = MeteredEndpoint("POST /v1/audio/speech", frozenset({ModelKind.SPEECH}))
TRANSCRIPTIONS = MeteredEndpoint(
    "POST /v1/audio/transcriptions", frozenset({ModelKind.TRANSCRIPTION})
)
TRANSLATIONS = MeteredEndpoint("POST /v1/audio/translations", TRANSCRIPTIONS.kinds)
# Legacy completions serve text models only: OpenAI serves them for its
# instruct and base models, OpenAI-compatible servers (vLLM, DeepSeek) for
# their text models; a multimodal chat model (gpt-4o) is chat's.
COMPLETIONS = MeteredEndpoint("POST /v1/completions", frozenset({ModelKind.TEXT}))
MODERATIONS = MeteredEndpoint("POST /v1/moderations", frozenset({ModelKind.MODERATION}))
RERANK = MeteredEndpoint("POST /v1/rerank", frozenset({ModelKind.RERANK}))

# In the order a refusal looks for the endpoint to name: the first that serves a kind.
METERED = (CHAT, EMBEDDINGS, IMAGES, VIDEOS, REMIX, SPEECH, TRANSCRIPTIONS, TRANSLATIONS,
           COMPLETIONS, MODERATIONS, RERANK, IMAGE_EDITS, IMAGE_VARIATIONS)  # fmt: skip


def check_kind(model: Model, endpoint: MeteredEndpoint) -> None:
    """A 400 unless ``endpoint`` serves ``model``'s kind (what resolve_model does inline)."""
    if model.kind not in endpoint.kinds:
        raise wrong_endpoint(model, endpoint)


def wrong_endpoint(model: Model, endpoint: MeteredEndpoint) -> ApiError:
    kind = model.kind.value
    article = "an" if kind[0] in "aeiou" else "a"
    right = serving(model.kind)
    fix = f"use {right.route}" if right is not None else "no endpoint of this gateway serves it"
    return bad_request(
        f"{model.id} is {article} {kind} model: {fix}. {endpoint.route} serves "
        f"{_kinds(endpoint)} models.",
        param="model",
        code="wrong_endpoint",
    )


def serving(kind: ModelKind) -> MeteredEndpoint | None:
    return next((endpoint for endpoint in METERED if kind in endpoint.kinds), None)


def quoted_endpoint(model: Model, request: Mapping[str, Any]) -> MeteredEndpoint:
    """The endpoint a quote's ``request`` body is for, read from its fields as
    the quote prices it: ``messages`` chat, ``input`` embeddings, a ``prompt``
    images or, for a video model, videos (both take a prompt); for a text
    model a ``prompt`` is a legacy completion, for a moderation model an
    ``input`` a moderation, for a chat model a Responses call; ``query`` and
    ``documents`` a rerank."""
    if "messages" in request:
        return CHAT
    if model.kind in SPEECH.kinds or model.kind in TRANSCRIPTIONS.kinds:  # audio: by the model
        return SPEECH if model.kind in SPEECH.kinds else TRANSCRIPTIONS
    if "query" in request and "documents" in request:
        return RERANK
    if "input" in request:
        if model.kind in RESPONSES.kinds:  # a chat model's input: the Responses API
            return RESPONSES
        return MODERATIONS if model.kind is ModelKind.MODERATION else EMBEDDINGS
    if "prompt" in request:
        if model.kind is ModelKind.TEXT:  # a text model's prompt is a legacy completion
            return COMPLETIONS
        return VIDEOS if model.kind is ModelKind.VIDEO else IMAGES
    return VIDEOS if model.kind is ModelKind.VIDEO else CHAT


def check_quoted(model: Model, request: Mapping[str, Any]) -> None:
    """The refusal a quote gets where the call it prices would get one."""
    check_kind(model, quoted_endpoint(model, request))


def _kinds(endpoint: MeteredEndpoint) -> str:
    names = [kind.value for kind in ModelKind if kind in endpoint.kinds]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
