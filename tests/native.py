"""What the native-protocol tests share: a gateway with one channel of a
given type to the simulator, and the Anthropic and Gemini SDKs pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from google import genai
from google.genai import types as gtypes

from tollway.simulator import Simulator

from conftest import Served, serve, test_settings

UPSTREAMS = ["openai", "anthropic", "gemini"]


def channel_url(simulator: Simulator, kind: str) -> str:
    """OpenAI channels name the /v1 base; Anthropic and Gemini ones the host root."""
    return simulator.base_url if kind == "openai" else simulator.base_url.removesuffix("/v1")


@contextlib.asynccontextmanager
async def gateway(
    database_url: str, models: list[Any], simulator: Simulator, kind: str
) -> AsyncIterator[Served]:
    """A gateway whose one channel, of type ``kind``, serves every model."""
    async with serve(test_settings(database_url), models) as served:
        got = await served.admin.post(
            "/api/channels",
            json={
                "name": f"sim-{kind}",
                "type": kind,
                "base_url": channel_url(simulator, kind),
                "api_key": "sim-key",
                "models": ["*"],
            },
        )
        assert got.status_code == 201, got.text
        yield served


def claude(served: Served, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=served.base_url, api_key=key, max_retries=0)


def gemini(served: Served, key: str) -> genai.Client:
    options = gtypes.HttpOptions(
        base_url=served.base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key=key, http_options=options)
