"""/v1/videos: OpenAI's Videos API (Sora 2 shape), as asynchronous billed jobs.

- ``POST /v1/videos`` (JSON, or multipart/form-data as the openai SDK sends
  it): the video's price for the seconds asked is held, the job is created
  upstream, and the client gets the gateway's own job id (``video_<hex>``).
  Model, seconds and size are always sent upstream explicitly, so the video
  made is the one that was priced.
- ``GET /v1/videos/{id}``: the job, refreshed from the upstream while it is
  unfinished (a client's polls drive it; the reconciler in ``tollway.videos``
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

import contextlib
from collections.abc import Sequence
from dataclasses import replace

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.shapes import CallShape, VideoShape
from tollway.billing.videos import DEFAULT_MODEL, prompt_of, video_shape
from tollway.endpoints import REMIX, VIDEOS
from tollway.errors import bad_request, upstream_error
from tollway.gateway import Gateway
from tollway.ledger import UsageStatus
from tollway.providers import Outbound
from tollway.relay.forward import released_on_failure
from tollway.relay.inbound import read_json
from tollway.relay.pipeline import (
    Call,
    Inbound,
    Metered,
    run,
)
from tollway.relay.video_requests import VideoForm, read_video_form, video_method
from tollway.relay.video_views import (
    POLL_AFTER_HEADER,
    channel_gone,
    job_response,
    owned_job,
)
from tollway.state import Channel, TokenInfo
from tollway.timeutil import utcnow
from tollway.types import Model
from tollway.videos.jobs import FINAL, JobState, VideoJob, new_video_id, upstream_state
from tollway.videos.lifecycle import Refreshed, apply_upstream
from tollway.videos.store import insert_job
from tollway.videos.upstream import (
    parse_object,
    read_answer,
    send,
    upstream_path,
)

ENDPOINT = "videos"


REMIX_ENDPOINT = "videos/remix"


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
    overrides = {
        "model": call.model.id,
        "seconds": str(video.seconds),
        "size": video.size,
    }
    async with released_on_failure(call):
        body, content_type = await form.encode(overrides)
    # A JSON body is sent as its payload, so a channel's model_mapping can rename
    # it (a multipart one is renamed in its bytes: failover.renamed).
    payload = {**dict(form.items), **overrides} if form.form is None else None
    outbound = Outbound(ENDPOINT, body, payload, path=ENDPOINT, content_type=content_type)
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


def _source_channel(inbound: Inbound, candidates: Sequence[Channel]) -> Sequence[Channel]:
    """A remix is made where its source video lives."""
    source: VideoJob = inbound.source
    found = [c for c in candidates if c.id == source.channel_id]
    if not found:
        raise channel_gone(source)
    return found


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
    narrow=_source_channel,
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
        group_name=call.route.group.name,
        multiplier=call.route.group.text,
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
        await call.release(UsageStatus.UPSTREAM_ERROR, f"upstream answered HTTP {resp.status}")
        raise call.provider.failure(resp.status, data)
    if obj is None or not isinstance(obj.get("id"), str) or not obj["id"]:
        await call.release(UsageStatus.UPSTREAM_ERROR, "upstream answered without a video id")
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
        await call.release(UsageStatus.GATEWAY_ERROR, f"recording the job failed: {exc!r}")
        with contextlib.suppress(Exception):  # nobody could ever fetch it: stop it
            await read_answer(await send(call.gw, call.channel, "DELETE", upstream_path(job)))
        raise
    call.hand_over()
    return Refreshed(await apply_upstream(call.gw, job, obj), resp.header(POLL_AFTER_HEADER))
