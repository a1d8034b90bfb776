"""``/v1/videos``: OpenAI Videos API (Sora 2) jobs that advance with time.

Endpoints:

- ``POST /v1/videos``: a new job (body checks in ``video_requests``; an
  ``input_reference`` is accepted and ignored);
- ``GET /v1/videos``: ``after``, ``limit`` 1-100 default 20, ``order``
  asc|desc default desc;
- ``GET /v1/videos/{video_id}``: the job (lifecycle in ``video_jobs``), with
  an ``openai-poll-after-ms`` header: the time left until the job finishes,
  1-1000 ms; 1000 once finished;
- ``DELETE /v1/videos/{video_id}``;
- ``POST /v1/videos/{video_id}/remix``: ``{prompt}``; the source must be
  completed; model, seconds and size are the source's;
- ``GET /v1/videos/{video_id}/content?variant=video|thumbnail|spritesheet``:
  see ``video_content``;
- ``POST /_sim/videos/{video_id}/expire``: test control, the job expires.

``queue_ms``, ``render_ms`` and whether a job fails are fixed at creation:
from ``SimulatorConfig.video_queue_ms`` / ``video_render_ms`` /
``video_failure_rate`` (drawn from the seeded RNG once per job, so a seed
replays the same failures), overridden by the prompt's ``[sim:video_*]``
directives. ``[sim:error=STATUS]`` and ``[sim:latency_ms=N]`` make the create
(or remix) call itself fail or wait, as in chat.
"""

from __future__ import annotations

import time

from aiohttp import web

from .common import STATE, ApiError, SimState, begin_call, json_response
from .video_content import VARIANTS, check_downloadable, check_variant, content_bytes
from .video_jobs import VIDEOS, VideoJob, VideoStore
from .video_requests import (
    DIGITS,
    VideoDirectives,
    is_sora,
    model_of,
    prompt_of,
    read_body,
    seconds_of,
    size_of,
    split_directives,
)

LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
POLL_HEADER = "openai-poll-after-ms"


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
    prompt = prompt_of(body)
    model = model_of(body)
    sora = is_sora(model)
    seconds = seconds_of(body.get("seconds"), sora)
    size = size_of(body.get("size"), sora)
    directives, video = split_directives(prompt)
    await begin_call(state, directives)
    job = _new_job(request, state, video, model=model, prompt=prompt, seconds=seconds, size=size)
    return json_response(job.body(request.app[VIDEOS].clock()))


async def remix_video(request: web.Request) -> web.Response:
    state, store = request.app[STATE], request.app[VIDEOS]
    source = store.get(request.match_info["video_id"])
    body = await read_body(request)
    prompt = prompt_of(body)
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
    if not DIGITS.fullmatch(raw) or not 1 <= int(raw) <= LIST_MAX_LIMIT:
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


async def video_content(request: web.Request) -> web.Response:
    store = request.app[VIDEOS]
    job = store.get(request.match_info["video_id"])
    variant = check_variant(request.query.get("variant", "video"))
    check_downloadable(job, store.clock())
    return web.Response(body=content_bytes(job, variant), content_type=VARIANTS[variant])


async def expire_video(request: web.Request) -> web.Response:
    """Test control: the job reports ``failed`` / ``video_expired`` from now on."""
    store = request.app[VIDEOS]
    job = store.get(request.match_info["video_id"])
    job.expire(store.clock())
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
