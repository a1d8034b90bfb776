"""Reading, listing, deleting and downloading video jobs (GET/DELETE
/v1/videos/...). A job belongs to the account whose key created it: any of
that account's keys can see it, and to every other key it does not exist (404)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tollway.errors import ApiError, bad_request, not_found
from tollway.gateway import Gateway
from tollway.providers import PROVIDERS
from tollway.relay.forward import transport_error
from tollway.relay.inbound import REQUEST_ID_HEADER, authenticate
from tollway.relay.pipeline import (
    BILLING_METHOD_HEADER,
    COST_HEADER,
)
from tollway.state import Channel, TokenInfo
from tollway.transport import UpstreamAnswer
from tollway.types import nano_to_usd, parse_count
from tollway.upstream import UpstreamError
from tollway.videos.jobs import FINAL, JobState, VideoJob
from tollway.videos.lifecycle import Refreshed, close_job, refresh
from tollway.videos.store import list_jobs, load_job, mark_deleted
from tollway.videos.upstream import (
    job_channel,
    parse_object,
    read_answer,
    send,
    upstream_path,
)

log = logging.getLogger(__name__)


POLL_AFTER_HEADER = "openai-poll-after-ms"


VIDEO_ID_MAX = 64


CONTENT_VARIANTS = ("video", "thumbnail", "spritesheet")


LIST_DEFAULT_LIMIT = 20


LIST_MAX_LIMIT = 100


# Upstream answer headers a content download passes on.
CONTENT_HEADERS = ("content-type", "content-length", "content-disposition", "etag")


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
    headers = {
        BILLING_METHOD_HEADER: job.method.value,
        REQUEST_ID_HEADER: job.request_id,
    }
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
        cancelled = {
            "code": "video_cancelled",
            "message": "Deleted before it finished.",
        }
        job = await close_job(gw, job, JobState.CANCELLED, None, cancelled)
    await mark_deleted(gw, job)
    body = {"id": job.id, "object": "video.deleted", "deleted": True}
    return json_response(body, job_headers(job))


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


def channel_gone(job: VideoJob) -> ApiError:
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
        raise channel_gone(job)
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
        self,
        video_id: str,
        upstream: UpstreamAnswer,
        headers: list[tuple[bytes, bytes]],
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
