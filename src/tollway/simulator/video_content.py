"""What ``GET /v1/videos/{video_id}/content`` serves, and when.

Each ``variant`` is deterministic bytes derived from the job's model, prompt,
seconds and size: ``video`` is a ``video/mp4`` placeholder, ``thumbnail`` a
small ``image/png`` with the video's aspect ratio, ``spritesheet`` a PNG of
``SPRITESHEET_FRAMES`` frames side by side. Only a completed, unexpired job
has content; otherwise the answer is a 404 with code ``video_not_ready``,
``video_failed`` or ``video_expired``.
"""

from __future__ import annotations

from .common import ApiError
from .media import mp4_placeholder, parse_size, png_for_size
from .video_jobs import VideoJob

SPRITESHEET_FRAMES = 4
VARIANTS = {"video": "video/mp4", "thumbnail": "image/png", "spritesheet": "image/png"}


def check_variant(variant: str) -> str:
    """``variant`` if it is one of ``VARIANTS``, else a 400."""
    if variant not in VARIANTS:
        raise ApiError(
            400,
            f"Invalid value for 'variant': {variant!r}. Supported values are: "
            "'video', 'thumbnail', and 'spritesheet'.",
            param="variant",
            code="invalid_value",
        )
    return variant


def check_downloadable(job: VideoJob, now: float) -> None:
    """A 404 unless the job is completed and not expired at monotonic ``now``."""
    if job.expired:
        raise ApiError(404, f"Video '{job.id}' has expired.", code="video_expired")
    status = job.status(now)
    if status == "failed":
        raise ApiError(404, f"Video '{job.id}' failed: it has no content.", code="video_failed")
    if status != "completed":
        raise ApiError(
            404,
            f"Video '{job.id}' is not ready: its status is '{status}'. Poll "
            f"GET /v1/videos/{job.id} until it is 'completed'.",
            code="video_not_ready",
        )


def content_bytes(job: VideoJob, variant: str) -> bytes:
    key = f"{job.model}\x00{job.prompt}\x00{job.seconds}\x00{job.size}"
    if variant == "video":
        return mp4_placeholder(key)
    width, height = parse_size(job.size) or (1280, 720)
    if variant == "spritesheet":
        return png_for_size(key + "\x00sprites", width * SPRITESHEET_FRAMES, height, 64)
    return png_for_size(key, width, height)
