"""The input images of ``POST /v1/images/edits`` and ``/variations``: a
multipart body read into its text fields and its files (``Upload``), each file
recognised (png, jpeg or webp by its first bytes), measured (a PNG by its
header) and counted in gpt-image input tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .common import STATE, ApiError
from .media import PNG_SIGNATURE

# gpt-image input images (OpenAI's rule for GPT Image 1): fitted in 2048x2048,
# the short side brought down to 512, 65 tokens + 129 a 512-px tile; high
# input fidelity adds 4,160 for a square image, 6,240 for any other.
INPUT_BASE_TOKENS = 65
INPUT_TILE_TOKENS = 129
HIGH_FIDELITY_SQUARE = 4160
HIGH_FIDELITY_OTHER = 6240
_FORM_INTS = ("n", "output_compression", "partial_images")  # sent as text


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    filename: str
    content_type: str | None
    data: bytes

    @property
    def kind(self) -> str | None:
        """png, jpeg or webp by the first bytes (None: not an image)."""
        if self.data.startswith(PNG_SIGNATURE):
            return "png"
        if self.data.startswith(b"\xff\xd8\xff"):
            return "jpeg"
        if self.data[:4] == b"RIFF" and self.data[8:12] == b"WEBP":
            return "webp"
        return None

    @property
    def dimensions(self) -> tuple[int, int]:
        """A PNG's width and height (its IHDR); 1024x1024 for any other image."""
        if self.kind == "png" and self.data[12:16] == b"IHDR":
            return int.from_bytes(self.data[16:20], "big"), int.from_bytes(self.data[20:24], "big")
        return 1024, 1024

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "filename": self.filename,
            "content_type": self.content_type,
            "bytes": len(self.data),
        }


async def read_form(request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
    """A multipart body's text fields (numbers as numbers) and its files, in order.
    Recorded for /_sim/requests with the files summarised."""
    if request.content_type != "multipart/form-data":
        raise ApiError(400, "This endpoint takes multipart/form-data.")
    fields: dict[str, Any] = {}
    files: list[Upload] = []
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                data = bytes(await part.read())
                files.append(
                    Upload(part.name, part.filename, part.headers.get("Content-Type"), data)
                )
            else:
                fields[part.name] = await part.text()
    except (ValueError, AssertionError) as exc:
        raise ApiError(400, f"We could not parse the multipart body: {exc}") from exc
    request.app[STATE].stats.recent.append(
        {
            "method": request.method,
            "path": request.path,
            "body": {**fields, "files": [upload.summary() for upload in files]},
        }
    )
    for name in _FORM_INTS:
        if name in fields:
            text = fields[name]
            if not text.isdigit():
                raise ApiError(400, f"{name} must be an integer, got {text!r}", param=name)
            fields[name] = int(text)
    return fields, files


def input_image_tokens(upload: Upload, fidelity: str) -> int:
    """One input image's tokens by OpenAI's rule for GPT Image 1."""
    width, height = (max(1, side) for side in upload.dimensions)
    square = width == height
    for bound, side_of in ((2048, max), (512, min)):
        side = side_of(width, height)
        if side > bound:  # scaled down (never up), in whole pixels
            width, height = max(1, width * bound // side), max(1, height * bound // side)
    tiles = -(-width // 512) * -(-height // 512)
    tokens = INPUT_BASE_TOKENS + INPUT_TILE_TOKENS * tiles
    if fidelity == "high":
        tokens += HIGH_FIDELITY_SQUARE if square else HIGH_FIDELITY_OTHER
    return tokens
