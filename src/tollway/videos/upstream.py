"""Talking to the upstream a job lives on, through its channel's provider."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

import orjson

from tollway.gateway import Gateway
from tollway.providers import PROVIDERS, Outbound
from tollway.state import Channel
from tollway.transport import UpstreamAnswer
from tollway.videos.jobs import (
    VideoJob,
)


def job_channel(gw: Gateway, channel_id: int) -> Channel | None:
    """The channel a job lives on (an upstream job exists on that one only),
    while it has a key to call it with; disabled for new calls or not."""
    channel = gw.state.all_channels.get(channel_id)
    if channel is None or not channel.keys or channel.type not in PROVIDERS:
        return None
    return channel


def send(
    gw: Gateway,
    channel: Channel,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = None,
    timeout_s: float | None = None,
) -> Awaitable[UpstreamAnswer]:
    """One request to the channel's upstream, through its provider; the
    answer is open (close it)."""
    outbound = Outbound("videos", body, method=method, path=path, content_type=content_type)
    key = gw.router.key_for(channel).key
    request = PROVIDERS[channel.type].request(channel.base_url, key, outbound)
    timeout = gw.settings.upstream_timeout_s if timeout_s is None else timeout_s
    return gw.upstream.send(request, timeout)


async def read_answer(resp: UpstreamAnswer) -> bytes:
    try:
        return await resp.read()
    finally:
        resp.close()


def upstream_path(job: VideoJob, suffix: str = "") -> str:
    return f"videos/{quote(job.upstream_id, safe='')}{suffix}"


def parse_object(data: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
