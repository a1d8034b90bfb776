"""What billing reads of a request body before the call: its shape.

The relay and ``POST /api/quote`` both take a body's shape from here, and the
hold from its shape (billing/holds.py), so a quote of a body is the hold the
same body gets.

The prompt is bounded by the body's bytes (no tokenizer bills more than a
token a byte of text) less the bytes of its non-text parts, which are counted
by their own worst case instead (billing/media.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollway.errors import bad_request

MAX_N = 128
MAX_OUTPUT_TOKENS = 10_000_000

IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
AUDIO_PART = "input_audio"
FILE_PART = "file"
# Claude adds a system prompt of up to 346 tokens when tools are given, more
# than a short tool definition's bytes.
TOOLS_TOKENS = 500


@dataclass(frozen=True, slots=True)
class PromptParts:
    """A prompt's non-text parts, which providers bill by their own rules."""

    images: int = 0
    low_detail_images: int = 0
    audio_encoded_chars: int = 0  # base64 characters of input audio
    files: int = 0
    chars: int = 0  # their length in the body: held as parts, not as text
    extra_tokens: int = 0  # what a provider adds (a tool-use system prompt)


NO_PARTS = PromptParts()


@dataclass(frozen=True, slots=True)
class ImageShape:
    """An image request's size and quality as asked (None: not named)."""

    size: str | None = None
    quality: str | None = None
    # An edit's input images (and mask) at their worst case for the model,
    # billed at its image-input price (billing/images.py edit_image_tokens).
    image_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class VideoShape:
    """A video request's seconds and size, the model's defaults filled in."""

    seconds: int
    size: str


@dataclass(frozen=True, slots=True)
class AudioShape:
    """A speech or transcription request as billing reads it (billing/audio.py):
    the characters to read and the text's bytes; the audio's bytes and, when
    its header tells it, its duration; the speed asked (in 1/100ths)."""

    transcribes: bool  # a transcription or translation (else speech)
    characters: int = 0
    text_bytes: int = 0
    audio_bytes: int = 0
    audio_ms: int | None = None  # read from the file (a WAV header); None: unknown
    # As a non-WAV container says it (billing/audio.played_ms): an estimate only.
    played_ms: int | None = None
    speed_percent: int = 100


@dataclass(frozen=True, slots=True)
class CallShape:
    """What billing needs to know of a request before it is sent."""

    body_bytes: int
    max_output_tokens: int | None = None
    n: int = 1
    image: ImageShape | None = None
    parts: PromptParts = NO_PARTS
    video: VideoShape | None = None
    audio: AudioShape | None = None

    def short_of_funds(self, model_id: str, cost: str) -> str:
        """What to tell a caller whose balance or quota cannot hold this call."""
        if self.video is not None:
            return (
                f"This video ({model_id}, {self.video.seconds} s at {self.video.size}) costs "
                f"{cost}. Add credit, raise the quota, or ask for fewer seconds."
            )
        return f"This call may cost up to {cost}. Add credit, raise the quota, or lower max_tokens."


def variant_key(size: str | None, quality: str | None) -> str | None:
    """A request's ``Usage.variant``: ``"<size>/<quality>"``, a part left empty
    when the request does not name it; None when it names neither."""
    if size is None and quality is None:
        return None
    return f"{size or ''}/{quality or ''}"


def chat_shape(payload: dict[str, Any], body_bytes: int) -> CallShape:
    """A chat completions body: its messages, output limit, n and parts."""
    messages = chat_messages(payload)
    limit, n = chat_limits(payload)
    return CallShape(body_bytes, limit, n, parts=prompt_parts(payload, messages))


def embeddings_shape(payload: dict[str, Any], body_bytes: int) -> CallShape:
    """An embeddings body: input only, no output tokens."""
    inputs = payload.get("input")
    if not isinstance(inputs, str | list) or not inputs:
        raise bad_request("'input' must be a non-empty string or array.", param="input")
    return CallShape(body_bytes, max_output_tokens=0)


def int_field(payload: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"'{name}' must be a whole number from {low} to {high}.", param=name)
    return value


def chat_limits(payload: dict[str, Any]) -> tuple[int | None, int]:
    """A chat body's output limit per choice (None: not given) and its n."""
    limit = int_field(payload, "max_completion_tokens", 1, MAX_OUTPUT_TOKENS)
    if limit is None:
        limit = int_field(payload, "max_tokens", 1, MAX_OUTPUT_TOKENS)
    return limit, int_field(payload, "n", 1, MAX_N) or 1


def chat_messages(payload: dict[str, Any]) -> list[Any]:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    return messages


def prompt_parts(payload: dict[str, Any], messages: list[Any]) -> PromptParts:
    """Count the non-text parts of a chat body's messages."""
    images = low = audio = files = chars = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue  # a string (the common case) is text
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if not isinstance(kind, str):
                continue  # not a part: the upstream's to refuse
            if kind in IMAGE_PARTS:
                url, detail = _image(part, kind)
                images += 1
                low += detail == "low"
                chars += len(url)
            elif kind == AUDIO_PART:
                data = _field(part.get(AUDIO_PART), "data")
                audio += len(data)
                chars += len(data)
            elif kind == FILE_PART:
                data = _file_data(part.get(FILE_PART))
                files += 1
                chars += len(data)
    extra = TOOLS_TOKENS if payload.get("tools") else 0
    if not (images or audio or files or extra):
        return NO_PARTS
    return PromptParts(images, low, audio, files, chars, extra)


def _image(part: dict[str, Any], kind: str) -> tuple[str, Any]:
    """An image part's URL (or data) and its detail."""
    inner = part.get(kind)
    if isinstance(inner, str):  # Responses-style {"type": "input_image", "image_url": "..."}
        return inner, part.get("detail")
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        return part["image_url"], part.get("detail")
    if isinstance(inner, dict):
        return _field(inner, "url"), inner.get("detail")
    return "", None


def _field(inner: Any, name: str) -> str:
    value = inner.get(name) if isinstance(inner, dict) else None
    return value if isinstance(value, str) else ""


def _file_data(inner: Any) -> str:
    """An inline file's base64 data. A file named only by id cannot be held:
    nothing the gateway sees bounds what the upstream bills for it."""
    if isinstance(inner, dict) and isinstance(inner.get("file_id"), str):
        raise bad_request(
            "A file part must carry the file itself ('file_data'): this gateway has no "
            "Files API, so a 'file_id' cannot be priced before the call.",
            param="messages",
            code="unsupported_file_reference",
        )
    return _field(inner, "file_data")
