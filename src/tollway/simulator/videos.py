"""``/v1/videos``: OpenAI Videos API (Sora 2) jobs that advance with time.

A job's state is a pure function of the time elapsed since its creation
(monotonic clock), so no background task runs:

- ``queued`` (progress 0) for ``queue_ms``;
- ``in_progress`` for ``render_ms``, progress rising linearly from 0 to 99;
- then ``completed`` (progress 100, ``completed_at`` = creation + queue +
  render, ``expires_at`` = ``completed_at`` + 3600 s, as OpenAI's download
  window) or ``failed`` (progress 0, ``error: {code:
  "video_generation_failed", message}``).

``queue_ms``, ``render_ms`` and whether the job fails are fixed at creation:
from ``SimulatorConfig.video_queue_ms`` / ``video_render_ms`` /
``video_failure_rate`` (drawn from the seeded RNG once per job, so a seed
replays the same failures), overridden by prompt directives:

- ``[sim:video_fail]``         this job fails
- ``[sim:video_queue_ms=N]``   this job queues N ms
- ``[sim:video_render_ms=N]``  this job renders N ms
- ``[sim:error=STATUS]``, ``[sim:latency_ms=N]``: the create (or remix)
  call itself fails / waits, as in chat.

Endpoints: ``POST /v1/videos`` (JSON, multipart/form-data as the openai SDK
sends it, or urlencoded; an ``input_reference`` is accepted and ignored),
``GET /v1/videos`` (``after``, ``limit`` 1-100 default 20, ``order``
asc|desc default desc), ``GET /v1/videos/{video_id}`` (with an
``openai-poll-after-ms`` header: the time left until the job finishes,
1-1000 ms; 1000 once finished), ``DELETE /v1/videos/{video_id}``,
``POST /v1/videos/{video_id}/remix`` (``{prompt}``; the source must be
completed; model, seconds and size are the source's) and
``GET /v1/videos/{video_id}/content?variant=video|thumbnail|spritesheet``
(``video/mp4`` placeholder bytes, or a small ``image/png``; a 404 error with
code ``video_not_ready`` / ``video_failed`` / ``video_expired`` unless the
job is completed).

Test control: ``POST /_sim/videos/{video_id}/expire`` expires a job: from
then on it reports ``status: "failed"``, ``error.code: "video_expired"``,
``expires_at`` = the time of the call (progress and ``completed_at`` stay as
they were), and its content is a 404 ``video_expired``. (OpenAI keeps an
expired job's status and only stops serving its content; the simulator
marks it failed so a reconciler sees the change on the job itself.)

Models whose id (after any ``provider/`` prefix) starts with ``sora-2`` take
``seconds`` 4|8|12 and the four Sora sizes; other models (``sora_video2``,
``veo-...``) take any positive whole number of seconds (up to 3600) and any
``WxH``. Jobs live in memory, the newest ``MAX_JOBS`` per simulator.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .common import STATE, ApiError, SimState, begin_call, json_response, read_json
from .directives import DirectiveError, Directives, parse_directives
from .media import mp4_placeholder, parse_size, png_for_size

DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"
SORA_SECONDS = frozenset({"4", "8", "12"})
SORA_SIZES = frozenset({"720x1280", "1280x720", "1024x1792", "1792x1024"})
MAX_SECONDS = 3600
MAX_JOBS = 10_000
EXPIRES_AFTER_S = 3600
POLL_AFTER_MAX_MS = 1000
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
SPRITESHEET_FRAMES = 4
VARIANTS = {"video": "video/mp4", "thumbnail": "image/png", "spritesheet": "image/png"}
POLL_HEADER = "openai-poll-after-ms"

_VIDEO_DIRECTIVE = re.compile(r"\[sim:(video_[a-z_]+)(?:=([^\]]*))?\]")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class VideoDirectives:
    fail: bool = False
    queue_ms: int | None = None
    render_ms: int | None = None


def split_directives(prompt: str) -> tuple[Directives, VideoDirectives]:
    """The chat directives and the ``[sim:video_*]`` ones of a prompt (400 on a bad one)."""
    found: dict[str, Any] = {}

    def take(match: re.Match[str]) -> str:
        key, raw = match.group(1), match.group(2)
        if key == "video_fail":
            if raw is not None:
                raise DirectiveError("[sim:video_fail] takes no value")
            found["fail"] = True
        elif key in ("video_queue_ms", "video_render_ms"):
            if raw is None or not _DIGITS.fullmatch(raw):
                raise DirectiveError(f"[sim:{key}=...] needs a non-negative integer, got {raw!r}")
            found[key.removeprefix("video_")] = int(raw)
        else:
            raise DirectiveError(f"unknown simulator directive [sim:{key}]")
        return " "

    try:
        rest = _VIDEO_DIRECTIVE.sub(take, prompt)
        return parse_directives(rest), VideoDirectives(**found)
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="prompt") from exc


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


async def read_body(request: web.Request) -> dict[str, Any]:
    """A JSON, multipart or urlencoded body as a dict; uploaded files are summarised."""
    if request.content_type == "multipart/form-data":
        fields: dict[str, Any] = {}
        try:
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    data = await part.read()
                    fields[part.name] = {
                        "filename": part.filename,
                        "content_type": part.headers.get("Content-Type"),
                        "bytes": len(data),
                    }
                else:
                    fields[part.name] = await part.text()
        except (ValueError, AssertionError) as exc:
            raise ApiError(400, f"We could not parse the multipart body: {exc}") from exc
    elif request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
    else:
        return await read_json(request)
    request.app[STATE].stats.recent.append(
        {"method": request.method, "path": request.path, "body": fields}
    )
    return fields


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "you must provide a non-empty prompt", param="prompt")
    return prompt


def _is_sora(model: str) -> bool:
    return model.rsplit("/", 1)[-1].lower().startswith("sora-2")


def _seconds(raw: Any, sora: bool) -> str:
    if raw is None or raw == "":
        return DEFAULT_SECONDS
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if sora and isinstance(raw, str) and raw not in SORA_SECONDS:
        raise ApiError(
            400,
            f"Invalid value for 'seconds': {raw!r}. Supported values are: '4', '8', and '12'.",
            param="seconds",
            code="invalid_value",
        )
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw) or not 0 < int(raw) <= MAX_SECONDS:
        raise ApiError(
            400,
            f"Invalid value for 'seconds': {raw!r}. Use a whole number of seconds "
            f"from 1 to {MAX_SECONDS}, as a string.",
            param="seconds",
            code="invalid_value",
        )
    return str(int(raw))


def _size(raw: Any, sora: bool) -> str:
    if raw is None or raw == "":
        return DEFAULT_SIZE
    if sora and isinstance(raw, str) and raw not in SORA_SIZES:
        raise ApiError(
            400,
            f"Invalid value for 'size': {raw!r}. Supported values are: "
            + ", ".join(repr(s) for s in sorted(SORA_SIZES))
            + ".",
            param="size",
            code="invalid_value",
        )
    if not isinstance(raw, str) or parse_size(raw) is None:
        raise ApiError(
            400,
            f"Invalid value for 'size': {raw!r}. Use WIDTHxHEIGHT, e.g. '1280x720'.",
            param="size",
            code="invalid_value",
        )
    return raw


def _new_job(
    request: web.Request,
    state: SimState,
    directives: VideoDirectives,
    *,
    model: str,
    prompt: str,
    seconds: str,
    size: str,
    remixed_from: str | None = None,
) -> VideoJob:
    store, config = request.app[VIDEOS], state.config
    rolled = state.roll(config.video_failure_rate)  # drawn once a job, whatever the directives
    job = VideoJob(
        id=state.new_id("video").replace("-", "_", 1),
        model=model,
        prompt=prompt,
        seconds=seconds,
        size=size,
        created_at=time.time(),
        started=store.clock(),
        queue_ms=config.video_queue_ms if directives.queue_ms is None else directives.queue_ms,
        render_ms=config.video_render_ms if directives.render_ms is None else directives.render_ms,
        fails=directives.fail or rolled,
        remixed_from_video_id=remixed_from,
    )
    store.add(job)
    return job


async def create_video(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_body(request)
    prompt = _prompt(body)
    model = body.get("model") or DEFAULT_MODEL
    if not isinstance(model, str):
        raise ApiError(400, "model must be a string", param="model")
    sora = _is_sora(model)
    seconds = _seconds(body.get("seconds"), sora)
    size = _size(body.get("size"), sora)
    directives, video = split_directives(prompt)
    await begin_call(state, directives)
    job = _new_job(request, state, video, model=model, prompt=prompt, seconds=seconds, size=size)
    return json_response(job.body(request.app[VIDEOS].clock()))


async def remix_video(request: web.Request) -> web.Response:
    state, store = request.app[STATE], request.app[VIDEOS]
    source = store.get(request.match_info["video_id"])
    body = await read_body(request)
    prompt = _prompt(body)
    directives, video = split_directives(prompt)
    status = source.status(store.clock())
    if status != "completed":
        raise ApiError(
            400,
            f"Video '{source.id}' is {status}: only completed videos can be remixed.",
            param="video_id",
            code="invalid_video_status",
        )
    await begin_call(state, directives)
    job = _new_job(
        request,
        state,
        video,
        model=source.model,
        prompt=prompt,
        seconds=source.seconds,
        size=source.size,
        remixed_from=source.id,
    )
    return json_response(job.body(store.clock()))


async def retrieve_video(request: web.Request) -> web.Response:
    store = request.app[VIDEOS]
    job = store.get(request.match_info["video_id"])
    now = store.clock()
    resp = json_response(job.body(now))
    resp.headers[POLL_HEADER] = str(job.poll_after_ms(now))
    return resp


async def delete_video(request: web.Request) -> web.Response:
    job = request.app[VIDEOS].remove(request.match_info["video_id"])
    return json_response({"id": job.id, "object": "video.deleted", "deleted": True})


def _limit(raw: str | None) -> int:
    if raw is None:
        return LIST_DEFAULT_LIMIT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= LIST_MAX_LIMIT:
        raise ApiError(
            400, f"limit must be an integer between 1 and {LIST_MAX_LIMIT}", param="limit"
        )
    return int(raw)


async def list_videos(request: web.Request) -> web.Response:
    store = request.app[VIDEOS]
    query = request.query
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be 'asc' or 'desc'", param="order")
    limit = _limit(query.get("limit"))
    jobs = list(store.jobs.values())
    if order == "desc":
        jobs.reverse()
    start = 0
    after = query.get("after")
    if after:
        ids = [job.id for job in jobs]
        if after not in ids:
            raise ApiError(400, f"after: no video with id '{after}'", param="after")
        start = ids.index(after) + 1
    page = jobs[start : start + limit]
    now = store.clock()
    return json_response(
        {
            "object": "list",
            "data": [job.body(now) for job in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": start + limit < len(jobs),
        }
    )


def content_bytes(job: VideoJob, variant: str) -> bytes:
    key = f"{job.model}\x00{job.prompt}\x00{job.seconds}\x00{job.size}"
    if variant == "video":
        return mp4_placeholder(key)
    width, height = parse_size(job.size) or (1280, 720)
    if variant == "spritesheet":
        return png_for_size(key + "\x00sprites", width * SPRITESHEET_FRAMES, height, 64)
    return png_for_size(key, width, height)


async def video_content(request: web.Request) -> web.Response:
    store = request.app[VIDEOS]
    job = store.get(request.match_info["video_id"])
    variant = request.query.get("variant", "video")
    if variant not in VARIANTS:
        raise ApiError(
            400,
            f"Invalid value for 'variant': {variant!r}. Supported values are: "
            "'video', 'thumbnail', and 'spritesheet'.",
            param="variant",
            code="invalid_value",
        )
    if job.expired:
        raise ApiError(404, f"Video '{job.id}' has expired.", code="video_expired")
    status = job.status(store.clock())
    if status == "failed":
        raise ApiError(404, f"Video '{job.id}' failed: it has no content.", code="video_failed")
    if status != "completed":
        raise ApiError(
            404,
            f"Video '{job.id}' is not ready: its status is '{status}'. Poll "
            f"GET /v1/videos/{job.id} until it is 'completed'.",
            code="video_not_ready",
        )
    return web.Response(body=content_bytes(job, variant), content_type=VARIANTS[variant])


async def expire_video(request: web.Request) -> web.Response:
    """Test control: the job reports ``failed`` / ``video_expired`` from now on."""
    store = request.app[VIDEOS]
    job = store.get(request.match_info["video_id"])
    if job.expired_at is None:
        job.expired_at = store.clock()
        job.expired_wall = int(time.time())
    return json_response(job.body(store.clock()))


def setup(app: web.Application) -> None:
    app[VIDEOS] = VideoStore()
    app.router.add_post("/v1/videos", create_video)
    app.router.add_get("/v1/videos", list_videos)
    app.router.add_get("/v1/videos/{video_id}", retrieve_video)
    app.router.add_delete("/v1/videos/{video_id}", delete_video)
    app.router.add_post("/v1/videos/{video_id}/remix", remix_video)
    app.router.add_get("/v1/videos/{video_id}/content", video_content)
    app.router.add_post("/_sim/videos/{video_id}/expire", expire_video)
