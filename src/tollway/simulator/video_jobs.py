"""Video jobs of ``/v1/videos`` and the in-memory store that keeps them.

A job's state is a pure function of the time elapsed since its creation
(monotonic clock), so no background task runs:

- ``queued`` (progress 0) for ``queue_ms``;
- ``in_progress`` for ``render_ms``, progress rising linearly from 0 to 99;
- then ``completed`` (progress 100, ``completed_at`` = creation + queue +
  render, ``expires_at`` = ``completed_at`` + 3600 s, as OpenAI's download
  window) or ``failed`` (progress 0, ``error: {code:
  "video_generation_failed", message}``).

``queue_ms``, ``render_ms`` and whether the job fails are fixed when the job
is made (see ``videos``).

An expired job (the ``POST /_sim/videos/{video_id}/expire`` test control)
reports ``status: "failed"``, ``error.code: "video_expired"`` and
``expires_at`` = the time of the expiry, while progress and ``completed_at``
stay as they were. (OpenAI keeps an expired job's status and only stops
serving its content; the simulator marks it failed so a reconciler sees the
change on the job itself.)

Jobs live in memory, the newest ``MAX_JOBS`` per simulator.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .common import ApiError

MAX_JOBS = 10_000
EXPIRES_AFTER_S = 3600
POLL_AFTER_MAX_MS = 1000


@dataclass(slots=True)
class VideoJob:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    created_at: float  # wall clock, seconds
    started: float  # monotonic clock, seconds
    queue_ms: int
    render_ms: int
    fails: bool
    remixed_from_video_id: str | None = None
    expired_at: float | None = None  # monotonic time of the expire control
    expired_wall: int | None = None

    def phase(self, now: float) -> tuple[str, int, float]:
        """(status, progress, ms until finished) at monotonic ``now``, expiry aside."""
        elapsed_ms = round((now - self.started) * 1000, 3)  # µs: no float noise at edges
        done_ms = self.queue_ms + self.render_ms
        if elapsed_ms < self.queue_ms:
            return "queued", 0, done_ms - elapsed_ms
        if elapsed_ms < done_ms:
            progress = min(99, int(100 * (elapsed_ms - self.queue_ms) / self.render_ms))
            return "in_progress", progress, done_ms - elapsed_ms
        return ("failed", 0, 0.0) if self.fails else ("completed", 100, 0.0)

    @property
    def expired(self) -> bool:
        return self.expired_at is not None

    def status(self, now: float) -> str:
        return "failed" if self.expired else self.phase(now)[0]

    def expire(self, now: float) -> None:
        """From ``now`` on the job reports ``failed`` / ``video_expired``; once only."""
        if self.expired_at is None:
            self.expired_at = now
            self.expired_wall = int(time.time())

    def body(self, now: float) -> dict[str, Any]:
        at = now if self.expired_at is None else min(now, self.expired_at)
        status, progress, _ = self.phase(at)
        completed_at: int | None = None
        expires_at: int | None = None
        error: dict[str, str] | None = None
        if status == "completed":
            completed_at = int(self.created_at + (self.queue_ms + self.render_ms) / 1000)
            expires_at = completed_at + EXPIRES_AFTER_S
        elif status == "failed":
            error = {
                "code": "video_generation_failed",
                "message": "Video generation failed (simulated).",
            }
        if self.expired_wall is not None:
            status, expires_at = "failed", self.expired_wall
            error = {"code": "video_expired", "message": "The video has expired (simulated)."}
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": status,
            "progress": progress,
            "created_at": int(self.created_at),
            "completed_at": completed_at,
            "expires_at": expires_at,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "remixed_from_video_id": self.remixed_from_video_id,
            "error": error,
        }

    def poll_after_ms(self, now: float) -> int:
        """The ``openai-poll-after-ms`` hint: ms until finished, 1-1000; 1000 once finished."""
        status, _, remaining = self.phase(now)
        if self.expired or status in ("completed", "failed"):
            return POLL_AFTER_MAX_MS
        return max(1, min(POLL_AFTER_MAX_MS, math.ceil(remaining)))


class VideoStore:
    """The jobs of one simulator, oldest first; ``clock`` is swappable for tests."""

    def __init__(self, limit: int = MAX_JOBS, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.jobs: OrderedDict[str, VideoJob] = OrderedDict()

    def add(self, job: VideoJob) -> None:
        self.jobs[job.id] = job
        while len(self.jobs) > self.limit:
            self.jobs.popitem(last=False)

    def get(self, video_id: str) -> VideoJob:
        job = self.jobs.get(video_id)
        if job is None:
            raise ApiError(
                404, f"Video with id '{video_id}' not found.", param="video_id", code="not_found"
            )
        return job

    def remove(self, video_id: str) -> VideoJob:
        job = self.get(video_id)
        del self.jobs[video_id]
        return job

    def clear(self) -> None:
        self.jobs.clear()


VIDEOS = web.AppKey("tollway_simulator_videos", VideoStore)
