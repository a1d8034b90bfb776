"""The most a prompt's non-text parts can be billed, per model.

Providers bill an image in a prompt by their own rules, and a part's bytes say
little of its bill: a 44-byte ``image_url`` is 85 to 1,445 tokens on gpt-4o,
up to 48,169 on gpt-4o-mini. The hold counts every part at the most its model
can bill for it (the hold bounds the charge):

- images: the model family's largest per-image count, at ``detail: "low"``
  the family's fixed low-detail count where it has one;
- audio (``input_audio``): by its decoded size, as if it were at the lowest
  bitrate any accepted format has, at the highest tokens per second any
  provider bills;
- files (``file_data``): as many pages as a provider accepts in one file, each
  a full page image plus a page of text.

A part that names a file by id is refused: the gateway has no Files API, so
nothing it can see bounds that part's bill.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.types import Model

# OpenAI's tiled vision (gpt-4o, gpt-4.1, o1, o3 ...): an image is scaled to fit
# 2048x2048, then its short side to 768, and cut in 512-px tiles: at most 4 x 2
# tiles. gpt-4o bills 85 + 170 a tile (o1/o3: 75 + 150, less).
TILES_MAX = 8
OPENAI_TILED = 85 + TILES_MAX * 170
OPENAI_TILED_LOW = 85
# gpt-4o-mini bills the same tiles at 2,833 + 5,667 a tile (at its lower price).
OPENAI_4O_MINI = 2833 + TILES_MAX * 5667
OPENAI_4O_MINI_LOW = 2833
# Patch-billed models (gpt-4.1-mini/nano, o4-mini): at most 1,536 32-px patches
# times a per-model multiplier, the largest 2.46 (gpt-4.1-nano).
OPENAI_PATCHES = 3779
# Claude bills width x height / 750 after resizing; its high-resolution models
# accept up to 2,576 px on the long edge (about 4,784 tokens).
ANTHROPIC_IMAGE = 4800
# Any other model: Qwen-VL's largest image (16,384 tokens) bounds the vision
# models priced in the catalog (Gemini: 258 a 768-px tile; 1,120 at Gemini 3's
# high resolution).
OTHER_IMAGE = 16384

# Audio: Gemini's 32 tokens a second is the most any provider bills; 8 kbit/s
# MP3 (1,000 bytes a second) is the smallest audio an accepted format carries.
# One token per 16 decoded bytes bounds both with room to spare (2 kbit/s).
AUDIO_BYTES_PER_TOKEN = 16

# Files: OpenAI and Anthropic read at most 100 pages of a PDF, each as an image
# of the page plus its text.
FILE_PAGES = 100
FILE_PAGE_TEXT_TOKENS = 1500


@dataclass(frozen=True, slots=True)
class ImageTokens:
    """The most one image costs a model's prompt, at any detail and at low."""

    most: int
    low: int


# Id prefixes of OpenAI families, most specific first.
_OPENAI_FAMILIES: tuple[tuple[str, ImageTokens], ...] = (
    ("gpt-4o-mini", ImageTokens(OPENAI_4O_MINI, OPENAI_4O_MINI_LOW)),
    ("gpt-4.1-mini", ImageTokens(OPENAI_PATCHES, OPENAI_PATCHES)),
    ("gpt-4.1-nano", ImageTokens(OPENAI_PATCHES, OPENAI_PATCHES)),
    ("o4-mini", ImageTokens(OPENAI_PATCHES, OPENAI_PATCHES)),
    ("gpt-4o", ImageTokens(OPENAI_TILED, OPENAI_TILED_LOW)),
    ("chatgpt-4o", ImageTokens(OPENAI_TILED, OPENAI_TILED_LOW)),
    ("gpt-4-turbo", ImageTokens(OPENAI_TILED, OPENAI_TILED_LOW)),
    ("gpt-4.1", ImageTokens(OPENAI_TILED, OPENAI_TILED_LOW)),
    ("gpt-4.5", ImageTokens(OPENAI_TILED, OPENAI_TILED_LOW)),
    ("o1", ImageTokens(OPENAI_TILED, OPENAI_TILED_LOW)),
    ("o3", ImageTokens(OPENAI_TILED, OPENAI_TILED_LOW)),
)
_ANTHROPIC = ImageTokens(ANTHROPIC_IMAGE, ANTHROPIC_IMAGE)
_OTHER = ImageTokens(OTHER_IMAGE, OTHER_IMAGE)


def image_tokens(model: Model) -> ImageTokens:
    """The most one prompt image can be billed on ``model``, in input tokens."""
    if model.provider == "openai":
        for prefix, tokens in _OPENAI_FAMILIES:
            if model.id.startswith(prefix):
                return tokens
    if model.provider == "anthropic":
        return _ANTHROPIC
    return _OTHER


def audio_tokens(decoded_bytes: int) -> int:
    """The most an input audio of this many bytes can be billed, in tokens."""
    return -(-decoded_bytes // AUDIO_BYTES_PER_TOKEN)


def file_tokens(model: Model) -> int:
    """The most one inline file (a PDF) can be billed, in input tokens."""
    return FILE_PAGES * (image_tokens(model).most + FILE_PAGE_TEXT_TOKENS)


def base64_bytes(encoded_chars: int) -> int:
    """The most bytes a base64 text of this length decodes to."""
    return encoded_chars * 3 // 4
