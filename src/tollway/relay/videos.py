"""/v1/videos: OpenAI's Videos API (Sora 2 shape), as asynchronous billed jobs.

- ``POST /v1/videos`` (JSON, or multipart/form-data as the openai SDK sends
  it): the video's price for the seconds asked is held, the job is created
  upstream, and the client gets the gateway's own job id (``video_<hex>``).
  Model, seconds and size are always sent upstream explicitly, so the video
  made is the one that was priced.
- ``GET /v1/videos/{id}``: the job, refreshed from the upstream while it is
  unfinished (a client's polls drive it; the reconciler in ``video_jobs``
  does the same for jobs nobody polls). The hold is settled when the job
  completes and released when it fails, is cancelled or expires.
- ``GET /v1/videos/{id}/content?variant=``: the upstream's bytes, streamed
  through, once the job has completed.
- ``GET /v1/videos`` (``after``, ``limit``, ``order``): the account's jobs as
  last seen (the reconciler keeps them fresh; listing polls nothing).
- ``DELETE /v1/videos/{id}``: deleted upstream; an unfinished job is
  cancelled and its hold released.
- ``POST /v1/videos/{id}/remix``: a new job, billed like its source.

A job belongs to the account whose key created it: any of that account's
keys can see it, and to every other key it does not exist (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tollway.billing.shapes import CallShape, VideoShape
from tollway.billing.videos import DEFAULT_MODEL, prompt_of, video_shape
from tollway.endpoints import REMIX, VIDEOS
from tollway.errors import ApiError, bad_request, not_found, upstream_error
from tollway.gateway import Gateway
from tollway.providers import PROVIDERS, Outbound, Provider
from tollway.relay.forward import released_on_failure, transport_error
from tollway.relay.inbound import REQUEST_ID_HEADER, authenticate, read_json
from tollway.relay.pipeline import BILLING_METHOD_HEADER, COST_HEADER, Call, Inbound, Metered, run
from tollway.relay.video_requests import VideoForm, read_video_form, video_method
from tollway.state import Channel, TokenInfo
from tollway.timeutil import utcnow
from tollway.transport import UpstreamAnswer
from tollway.types import Model, nano_to_usd, parse_count
from tollway.upstream import UpstreamError
from tollway.video_jobs import (
    FINAL,
    JobState,
    Refreshed,
    VideoJob,
    apply_upstream,
    close_job,
    insert_job,
    job_channel,
    list_jobs,
    load_job,
    mark_deleted,
    new_video_id,
    parse_object,
    read_answer,
    refresh,
    send,
    upstream_path,
    upstream_state,
)

log = logging.getLogger(__name__)

ENDPOINT = "videos"
REMIX_ENDPOINT = "videos/remix"
POLL_AFTER_HEADER = "openai-poll-after-ms"
VIDEO_ID_MAX = 64
CONTENT_VARIANTS = ("video", "thumbnail", "spritesheet")
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
# Upstream answer headers a content download passes on.
CONTENT_HEADERS = ("content-type", "content-length", "content-disposition", "etag")


# --- creating a job -----------------------------------------------------------


async def _read_create(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    form = await read_video_form(request, gw.settings.max_body_bytes)
    fields = dict(form.items)  # the last of a repeated field, as form.get reads
    name = fields.get("model")
    if name is not None and not isinstance(name, str):
        await form.close()
        raise bad_request("'model' must be a string.", param="model")
    fields["model"] = name or DEFAULT_MODEL
    return Inbound(fields, b"", source=form, close=form.close, json=False)


def _shape(inbound: Inbound, model: Model) -> CallShape:
    prompt_of(inbound.payload.get("prompt"))
    return video_shape(model, inbound.payload)


async def _forward_create(call: Call, inbound: Inbound, request: Request) -> Response:
    video = _video(call)
    form: VideoForm = inbound.source
    overrides = {"model": call.model.id, "seconds": str(video.seconds), "size": video.size}
    async with released_on_failure(call):
        body, content_type = await form.encode(overrides)
    outbound = Outbound(ENDPOINT, body, path=ENDPOINT, content_type=content_type)
    return job_response(await submit(call, outbound, new_job(call, video)))


CREATE = Metered(
    VIDEOS,
    ENDPOINT,
    _shape,
    _forward_create,
    read=_read_create,
    method=video_method,
    outlives_request=True,
)


async def _read_remix(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    source = await owned_job(gw, token, request.path_params["video_id"])
    payload, _ = await read_json(request, gw.settings.max_body_bytes)
    fields = {"model": source.model, "prompt": payload.get("prompt")}
    return Inbound(fields, orjson.dumps(payload), source=source, json=False)


def _remix_shape(inbound: Inbound, model: Model) -> CallShape:
    prompt_of(inbound.payload.get("prompt"))
    source: VideoJob = inbound.source
    return CallShape(body_bytes=0, video=VideoShape(source.seconds, source.size))


def _source_channel(
    gw: Gateway, model: Model, inbound: Inbound, endpoint: str
) -> tuple[Channel, Provider]:
    """A remix is made where its source video lives."""
    source: VideoJob = inbound.source
    channel = job_channel(gw, source.channel_id)
    if channel is None:
        raise _channel_gone(source)
    return channel, PROVIDERS[channel.type]


async def _forward_remix(call: Call, inbound: Inbound, request: Request) -> Response:
    source: VideoJob = inbound.source
    outbound = Outbound(REMIX_ENDPOINT, inbound.body, path=upstream_path(source, "/remix"))
    job = new_job(call, _video(call), remixed_from=source.id)
    return job_response(await submit(call, outbound, job))


REMIX_VIDEO = Metered(
    REMIX,
    REMIX_ENDPOINT,
    _remix_shape,
    _forward_remix,
    read=_read_remix,
    method=video_method,
    route=_source_channel,
    outlives_request=True,
)


async def create_video(request: Request) -> Response:
    result: Response = await run(CREATE, request)
    return result


async def remix_video(request: Request) -> Response:
    result: Response = await run(REMIX_VIDEO, request)
    return result


def _video(call: Call) -> VideoShape:
    assert call.shape.video is not None  # both recipes shape a video
    return call.shape.video


def new_job(call: Call, video: VideoShape, remixed_from: str | None = None) -> VideoJob:
    """The job a call creates; its hold is the call's, handed over once recorded."""
    return VideoJob(
        id=new_video_id(),
        upstream_id="",
        account_id=call.token.account_id,
        token_id=call.token.id,
        channel_id=call.channel.id,
        model=call.model.id,
        billing_mode=call.token.billing_mode.value,
        method=call.method,
        endpoint=call.endpoint,
        seconds=video.seconds,
        size=video.size,
        request_id=call.request_id,
        hold_nano=call.hold_nano,
        created_at=utcnow(),
        remixed_from=remixed_from,
    )


async def submit(call: Call, outbound: Outbound, job: VideoJob) -> Refreshed:
    """Create the job upstream and record it; the call's hold passes to the
    job. Whatever stops it before the job is recorded gives the hold back."""
    async with released_on_failure(call):
        resp = await call.send(outbound)
        data = await read_answer(resp)
    obj = parse_object(data)
    if resp.status != 200:
        await call.release("upstream_error", f"upstream answered HTTP {resp.status}")
        raise call.provider.failure(resp.status, data)
    if obj is None or not isinstance(obj.get("id"), str) or not obj["id"]:
        await call.release("upstream_error", "upstream answered without a video id")
        raise upstream_error("The upstream answered without a video id.")
    state = upstream_state(obj)
    job = replace(
        job,
        upstream_id=obj["id"],
        upstream=obj,
        state=state if state is not None and state not in FINAL else JobState.QUEUED,
    )
    try:
        await insert_job(call.gw, job)
    except BaseException as exc:
        await call.release("gateway_error", f"recording the job failed: {exc!r}")
        with contextlib.suppress(Exception):  # nobody could ever fetch it: stop it
            await read_answer(await send(call.gw, call.channel, "DELETE", upstream_path(job)))
        raise
    call.hand_over()
    return Refreshed(await apply_upstream(call.gw, job, obj), resp.header(POLL_AFTER_HEADER))


# --- reading jobs -------------------------------------------------------------


async def owned_job(gw: Gateway, token: TokenInfo, video_id: str) -> VideoJob:
    job = await load_job(gw, video_id, token.account_id) if is_video_id(video_id) else None
    if job is None:
        raise not_found(f"No video found with id '{video_id}'.", param="video_id")
    return job


def is_video_id(text: str) -> bool:
    """Could name a job (``video_`` and 32 hex digits): anything else, such as
    a NUL that PostgreSQL refuses in text, is no job without a query."""
    return len(text) <= VIDEO_ID_MAX and text.isascii() and text.isprintable()


def video_object(job: VideoJob) -> dict[str, Any]:
    """The upstream's object as the client sees it: the gateway's ids, and the
    end the gateway itself gave a job (cancelled, given up) where it did."""
    obj = dict(job.upstream or {})
    obj.setdefault("object", "video")
    obj["id"] = job.id
    obj["remixed_from_video_id"] = job.remixed_from
    if job.state in FINAL and job.state is not JobState.COMPLETED and job.error is not None:
        obj["status"] = "failed"
        obj["error"] = job.error
    return obj


def job_headers(job: VideoJob, poll_after_ms: str | None = None) -> dict[str, str]:
    headers = {BILLING_METHOD_HEADER: job.method.value, REQUEST_ID_HEADER: job.request_id}
    if job.cost_nano is not None:
        headers[COST_HEADER] = nano_to_usd(job.cost_nano)
    poll_after = parse_count(poll_after_ms)
    if poll_after is not None:
        headers[POLL_AFTER_HEADER] = str(poll_after)
    return headers


def json_response(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), 200, headers, media_type="application/json")


def job_response(refreshed: Refreshed) -> Response:
    job = refreshed.job
    return json_response(video_object(job), job_headers(job, refreshed.poll_after_ms))


async def retrieve_video(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    job = await owned_job(gw, token, request.path_params["video_id"])
    return job_response(await refresh(gw, job))


async def list_videos(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("'order' must be 'asc' or 'desc'.", param="order")
    limit = parse_count(query.get("limit", str(LIST_DEFAULT_LIMIT)))
    if limit is None or not 1 <= limit <= LIST_MAX_LIMIT:
        raise bad_request(f"'limit' must be from 1 to {LIST_MAX_LIMIT}.", param="limit")
    after = query.get("after") or None
    if after is not None and not is_video_id(after):
        raise bad_request(f"'after' is not a video id: {after[:80]!r}.", param="after")
    page = await list_jobs(gw, token.account_id, after, limit, order == "desc")
    if page is None:
        raise bad_request(f"'after': no video found with id '{after}'.", param="after")
    jobs, has_more = page
    return json_response(
        {
            "object": "list",
            "data": [video_object(job) for job in jobs],
            "first_id": jobs[0].id if jobs else None,
            "last_id": jobs[-1].id if jobs else None,
            "has_more": has_more,
        }
    )


async def delete_video(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    job = (await refresh(gw, await owned_job(gw, token, request.path_params["video_id"]))).job
    channel = job_channel(gw, job.channel_id)
    if channel is not None:
        try:
            resp = await send(gw, channel, "DELETE", upstream_path(job))
            data = await read_answer(resp)
        except (UpstreamError, OSError) as exc:
            raise transport_error(exc) from exc
        if resp.status not in (200, 404):
            raise PROVIDERS[channel.type].failure(resp.status, data)
    if job.open:
        cancelled = {"code": "video_cancelled", "message": "Deleted before it finished."}
        job = await close_job(gw, job, JobState.CANCELLED, None, cancelled)
    await mark_deleted(gw, job)
    body = {"id": job.id, "object": "video.deleted", "deleted": True}
    return json_response(body, job_headers(job))


# --- content ------------------------------------------------------------------

_NO_CONTENT = {
    JobState.QUEUED: "video_not_ready",
    JobState.IN_PROGRESS: "video_not_ready",
    JobState.FAILED: "video_failed",
    JobState.CANCELLED: "video_cancelled",
    JobState.EXPIRED: "video_expired",
}


def _not_downloadable(job: VideoJob) -> ApiError:
    code = _NO_CONTENT[job.state]
    if code == "video_not_ready":
        message = (
            f"Video '{job.id}' is not ready: its status is '{job.state.value}'. Poll "
            f"GET /v1/videos/{job.id} until it is 'completed'."
        )
    else:
        why = (job.error or {}).get("message")
        message = f"Video '{job.id}' is {job.state.value}: it has no content." + (
            f" {why}" if isinstance(why, str) and why else ""
        )
    return not_found(message, code=code)


def _channel_gone(job: VideoJob) -> ApiError:
    return ApiError(
        503,
        f"The upstream channel that made video '{job.id}' is not available right now.",
        "model_not_available",
        "upstream_error",
    )


async def video_content(request: Request) -> Response | ContentStream:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    variant = request.query_params.get("variant", "video")
    if variant not in CONTENT_VARIANTS:
        raise bad_request(
            f"'variant' must be one of {', '.join(CONTENT_VARIANTS)}; got {variant!r}.",
            param="variant",
        )
    job = await owned_job(gw, token, request.path_params["video_id"])
    job = (await refresh(gw, job)).job
    if job.state is not JobState.COMPLETED:
        raise _not_downloadable(job)
    channel = job_channel(gw, job.channel_id)
    if channel is None:
        raise _channel_gone(job)
    try:
        resp = await send(gw, channel, "GET", upstream_path(job, f"/content?variant={variant}"))
    except (UpstreamError, OSError) as exc:
        raise transport_error(exc) from exc
    if resp.status != 200:
        raise _content_failure(job, channel, resp.status, await read_answer(resp))
    headers = [
        (name.encode(), value.encode("latin-1"))
        for name in CONTENT_HEADERS
        if (value := resp.header(name)) is not None
    ]
    headers.append((REQUEST_ID_HEADER.encode(), job.request_id.encode()))
    return ContentStream(job.id, resp, headers)


def _content_failure(job: VideoJob, channel: Channel, status: int, data: bytes) -> ApiError:
    """The upstream's own 404 (expired, say) passes on, in the gateway's ids."""
    error = (parse_object(data) or {}).get("error")
    if status == 404 and isinstance(error, dict) and isinstance(error.get("message"), str):
        message = error["message"].replace(job.upstream_id, job.id)
        return not_found(message, code=str(error.get("code") or "not_found"))
    return PROVIDERS[channel.type].failure(status, data)


class ContentStream:
    """An ASGI response relaying an upstream download chunk by chunk. The
    upstream answer is closed however the relay ends: read to the end, broken
    off upstream, or the client gone (which stops the upstream at once)."""

    def __init__(
        self, video_id: str, upstream: UpstreamAnswer, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.video_id = video_id
        self.upstream = upstream
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            async for chunk in self.upstream.iter_chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (UpstreamError, OSError) as exc:  # the client sees a short body
            log.info("download of video %s ended early: %r", self.video_id, exc)
        finally:
            watcher.cancel()
            self.upstream.close()

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.upstream.close()  # wakes the relay
