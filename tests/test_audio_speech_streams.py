"""A speech stream the upstream breaks off (relay/audio.py's AudioStream, a
MeteredStream): the upstream answers in-process (test_pipeline's gateway), so
the test says exactly where it stops.

Raw audio has no way to say it was cut short: the client gets what came. An
SSE stream ends with the error event. Either way the call is billed, and the
record says the upstream broke off."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from test_audio import HELLO, SPEECH, spent
from test_pipeline import gateway

from tollway.providers.base import INTERRUPTED
from tollway.transport import MockAnswer, UpstreamRequest
from tollway.types import Model

from conftest import customer, usage_records

BROKEN_SPEECH = [
    ({"model": "tts-1"}, "audio/mpeg", b"ID3\x04" + bytes(60), b""),
    (
        {"model": "gpt-4o-mini-tts", "stream_format": "sse"},
        "text/event-stream",
        b'data: {"type":"speech.audio.delta","audio":"AAAA"}\n\n',
        INTERRUPTED,
    ),
]


@pytest.mark.parametrize(
    ("fields", "content_type", "first", "last"), BROKEN_SPEECH, ids=["raw", "sse"]
)
async def test_a_speech_stream_the_upstream_breaks_off_is_billed_as_interrupted(
    database_url: str,
    catalog_models: list[Model],
    fields: dict[str, Any],
    content_type: str,
    first: bytes,
    last: bytes,
) -> None:
    def handler(request: UpstreamRequest) -> MockAnswer:
        chunks = (first, ConnectionResetError("upstream went away"))
        return MockAnswer(200, chunks, {"content-type": content_type})

    async with gateway(database_url, catalog_models, handler) as (served, _):
        mkey, key = await customer(served)
        async with served.client(key) as c:
            got = await c.post(SPEECH, json={"input": HELLO, "voice": "alloy", **fields})
        assert got.status_code == 200 and got.headers["content-type"] == content_type
        assert got.content == first + last
        [record] = await usage_records(served, mkey)
        assert record["status"] == "upstream_interrupted"
        assert record["detail"] == "the audio stream did not end whole"
        if fields["model"] == "tts-1":  # by its characters, all the same
            assert record["input_characters"] == len(HELLO)
        else:
            assert record["usage_source"] == "estimated"
        assert spent(await served.balance_usd(mkey)) == Decimal(record["cost_usd"]) > 0
