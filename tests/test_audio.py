"""Speech, transcriptions and translations through a served gateway, driven by
the official SDK: each billed by its unit (characters, audio minutes, tokens),
exact to the nano-USD from the catalog's prices, the usage record, hostile
input refused with no balance change, and billing modes honoured."""

from __future__ import annotations

import io
import math
import struct
import warnings
from decimal import Decimal
from typing import Any

import openai
import pytest

from tollway.billing.pricing import bill
from tollway.simulator import Simulator
from tollway.types import BillingMethod, Usage

from conftest import Served, customer, sdk, usage_records

SPEECH = "/v1/audio/speech"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
HELLO = "Hello from the toll road, how are you today?"


def wav(ms: int, rate: int = 16_000) -> bytes:
    """A mono 16-bit WAV of ``ms`` milliseconds of a quiet tone."""
    count = rate * ms // 1000
    samples = b"".join(struct.pack("<h", (i * 37) % 2000 - 1000) for i in range(count))
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(samples)) + samples
    )  # fmt: skip


def cost(served: Served, model: str, usage: Usage) -> Decimal:
    """What ``usage`` costs on ``model`` at the served catalog's price, in USD."""
    found = served.gw.state.catalog.get(model)
    assert found is not None
    return Decimal(bill(found, BillingMethod.PER_USE, usage).total_nano) / 10**9


def spent(balance_usd: str, credit: str = "10") -> Decimal:
    return Decimal(credit) - Decimal(balance_usd)


def sent(simulator: Simulator, path: str) -> int:
    return simulator.stats.by_path.get(path, 0)


# --- speech ------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "usd_per_mchar"), [("tts-1", 15), ("tts-1-hd", 30)])
async def test_tts_is_billed_by_the_characters_of_its_input(
    served: Served, model: str, usd_per_mchar: int
) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        audio = await client.audio.speech.create(
            model=model, input=HELLO, voice="alloy", response_format="wav"
        )
    data = audio.read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    expected_nano = len(HELLO) * usd_per_mchar * 10**9 // 10**6
    assert cost(served, model, Usage(input_characters=len(HELLO))) * 10**9 == expected_nano
    assert spent(await served.balance_usd(mkey)) == Decimal(expected_nano) / 10**9
    [record] = await usage_records(served, mkey)
    assert (record["model"], record["endpoint"], record["method"]) == (
        model,
        "audio/speech",
        "per_use",
    )
    assert record["input_characters"] == len(HELLO)
    assert record["unit_prices_usd"] == {"input_characters": str(usd_per_mchar)}
    assert Decimal(record["cost_usd"]) == Decimal(expected_nano) / 10**9
    assert record["status"] == "ok"


async def test_speech_streams_with_the_format_s_content_type(served: Served) -> None:
    mkey, key = await customer(served)
    text = "x" * 600  # 50 s of speech at 12 characters a second: many chunks
    async with (
        sdk(served, key) as client,
        client.audio.speech.with_streaming_response.create(
            model="tts-1", input=text, voice="nova", response_format="mp3"
        ) as resp,
    ):
        assert resp.headers["content-type"] == "audio/mpeg"
        assert resp.headers["x-tollway-billing-method"] == "per_use"
        chunks = [chunk async for chunk in resp.iter_bytes()]
    assert b"".join(chunks)[:3] == b"ID3" and len(chunks) > 1
    expected = cost(served, "tts-1", Usage(input_characters=600))
    assert expected == Decimal("0.009")
    assert spent(await served.balance_usd(mkey)) == expected


async def test_gpt_4o_mini_tts_bills_the_sse_usage(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        audio = await client.audio.speech.create(
            model="gpt-4o-mini-tts", input=HELLO, voice="coral", stream_format="sse",
            instructions="calm",
        )  # fmt: skip
    events = [line for line in audio.read().split(b"\n") if line.startswith(b"data:")]
    assert b"speech.audio.done" in events[-1]
    # The simulator reports words in and 20 audio tokens a second of speech out.
    ms = math.ceil(len(HELLO) * 1000 / 12)
    usage = Usage(input_tokens=len(HELLO.split()), audio_output_tokens=math.ceil(ms * 20 / 1000))
    [record] = await usage_records(served, mkey)
    assert record["usage_source"] == "upstream"
    assert record["tokens"]["audio_output_tokens"] == usage.audio_output_tokens
    assert Decimal(record["cost_usd"]) == cost(served, "gpt-4o-mini-tts", usage)
    assert spent(await served.balance_usd(mkey)) == cost(served, "gpt-4o-mini-tts", usage)


async def test_gpt_4o_mini_tts_without_usage_is_estimated(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        await client.audio.speech.create(model="gpt-4o-mini-tts", input=HELLO, voice="coral")
    [record] = await usage_records(served, mkey)
    assert record["usage_source"] == "estimated"
    audio_tokens = math.ceil(len(HELLO) * 20 / 12)  # 12 characters, 20 tokens a second
    assert record["tokens"]["audio_output_tokens"] == audio_tokens
    usage = Usage(input_tokens=record["tokens"]["input_tokens"], audio_output_tokens=audio_tokens)
    assert Decimal(record["cost_usd"]) == cost(served, "gpt-4o-mini-tts", usage)


BAD_SPEECH: list[tuple[dict[str, Any], str]] = [
    ({"model": "tts-1", "voice": "alloy"}, "input"),
    ({"model": "tts-1", "voice": "alloy", "input": "x" * 4097}, "input"),
    ({"model": "tts-1", "voice": "alloy", "input": 7}, "input"),
    ({"model": "tts-1", "input": "hi"}, "voice"),
    ({"model": "tts-1", "input": "hi", "voice": "robot"}, "voice"),
    ({"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "ogg"},
     "response_format"),
    ({"model": "tts-1", "input": "hi", "voice": "alloy", "speed": 4.5}, "speed"),
    ({"model": "tts-1", "input": "hi", "voice": "alloy", "speed": 0.2}, "speed"),
    ({"model": "tts-1", "input": "hi", "voice": "alloy", "speed": "fast"}, "speed"),
    ({"model": "tts-1", "input": "hi", "voice": "alloy", "speed": True}, "speed"),
    ({"model": "tts-1", "input": "hi", "voice": "alloy", "stream_format": "sse"}, "stream_format"),
    ({"model": "tts-1", "input": "hi", "voice": "alloy", "instructions": "calm"}, "instructions"),
    ({"model": "gpt-4o-mini-tts", "input": "hi", "voice": "alloy", "stream_format": "x"},
     "stream_format"),
    ({"model": "whisper-1", "input": "hi", "voice": "alloy"}, "model"),
    ({"model": "gpt-4o", "input": "hi", "voice": "alloy"}, "model"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "param"), BAD_SPEECH)
async def test_bad_speech_is_a_400_that_costs_nothing(
    served: Served, simulator: Simulator, body: dict[str, Any], param: str
) -> None:
    mkey, key = await customer(served)
    before = sent(simulator, SPEECH)
    async with served.client(key) as c:
        got = await c.post(SPEECH, json=body)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["param"] == param
    assert sent(simulator, SPEECH) == before
    assert await served.balance_usd(mkey) == "10"
    assert await usage_records(served, mkey) == []


# --- transcriptions -------------------------------------------------------------------


async def test_whisper_bills_the_duration_the_upstream_reports(served: Served) -> None:
    mkey, key = await customer(served)
    audio = wav(2_300)  # the simulator reports whole seconds, rounded up: 3
    async with sdk(served, key) as client:
        raw = await client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("hello.wav", audio, "audio/wav"), language="en"
        )
    result = raw.parse()
    assert result.text and result.usage is not None
    expected = cost(served, "whisper-1", Usage(audio_input_ms=3000))
    assert expected == Decimal("0.0003")  # 3 s at $0.006 a minute
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == expected
    assert spent(await served.balance_usd(mkey)) == expected
    [record] = await usage_records(served, mkey)
    assert (record["endpoint"], record["audio_input_ms"]) == ("audio/transcriptions", 3000)
    assert record["unit_prices_usd"] == {"audio_input_ms": "0.006"}
    assert record["usage_source"] == "upstream"


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
async def test_whisper_text_formats_are_billed_by_the_file_s_duration(
    served: Served, fmt: str
) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        text = await client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", wav(1_500), "audio/wav"), response_format=fmt
        )
    assert isinstance(text, str) and text
    [record] = await usage_records(served, mkey)
    assert record["audio_input_ms"] == 1500 and record["usage_source"] == "estimated"
    assert Decimal(record["cost_usd"]) == cost(served, "whisper-1", Usage(audio_input_ms=1500))


async def test_gpt_4o_transcribe_bills_audio_tokens(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        result = await client.audio.transcriptions.create(
            model="gpt-4o-transcribe",
            file=("a.wav", wav(4_000), "audio/wav"),
            prompt="names of roads",
        )
    usage: Any = result.usage
    assert usage.type == "tokens"
    assert usage.input_token_details.audio_tokens == 40  # 10 a second
    expected = Usage(
        input_tokens=usage.input_token_details.text_tokens,
        audio_input_tokens=40,
        output_tokens=usage.output_tokens,
    )
    [record] = await usage_records(served, mkey)
    assert record["tokens"]["audio_input_tokens"] == 40
    assert record["tokens"]["input_tokens"] == 3  # "names of roads"
    assert Decimal(record["cost_usd"]) == cost(served, "gpt-4o-transcribe", expected)
    assert spent(await served.balance_usd(mkey)) == cost(served, "gpt-4o-transcribe", expected)


async def test_gpt_4o_transcribe_streams_and_bills_the_done_usage(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        stream = await client.audio.transcriptions.create(
            model="gpt-4o-mini-transcribe", file=("a.wav", wav(2_000), "audio/wav"), stream=True
        )
        events = [event async for event in stream]
    assert events[-1].type == "transcript.text.done"
    done: Any = events[-1]
    expected = Usage(input_tokens=0, audio_input_tokens=20, output_tokens=done.usage.output_tokens)
    [record] = await usage_records(served, mkey)
    assert record["usage_source"] == "upstream"
    assert Decimal(record["cost_usd"]) == cost(served, "gpt-4o-mini-transcribe", expected)


async def test_translation_without_usage_bills_the_file_s_duration(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            result = await client.audio.translations.create(
                model="whisper-1", file=("a.wav", wav(12_000), "audio/wav")
            )
    assert result.text
    [record] = await usage_records(served, mkey)
    assert record["endpoint"] == "audio/translations"
    assert record["audio_input_ms"] == 12_000
    expected = cost(served, "whisper-1", Usage(audio_input_ms=12_000))
    assert expected == Decimal("0.0012")
    assert Decimal(record["cost_usd"]) == expected


async def test_a_file_of_another_kind_or_none_is_a_400(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    before = sent(simulator, TRANSCRIPTIONS)
    async with sdk(served, key) as client:
        for file in (
            ("a.txt", b"just some text, not audio", "text/plain"),
            ("e.wav", b"", "audio/wav"),
        ):
            with pytest.raises(openai.BadRequestError) as caught:
                await client.audio.transcriptions.create(model="whisper-1", file=file)
            assert caught.value.param == "file"  # type: ignore[attr-defined]
        for fields in (
            {"response_format": "mp3"},
            {"temperature": "2"},
            {"timestamp_granularities": ["century"]},
        ):
            with pytest.raises(openai.BadRequestError):
                await client.audio.transcriptions.create(
                    model="whisper-1", file=("a.wav", wav(100), "audio/wav"), **fields
                )
        with pytest.raises(openai.BadRequestError) as wrong:
            await client.audio.transcriptions.create(
                model="tts-1", file=("a.wav", wav(100), "audio/wav")
            )
        assert wrong.value.code == "wrong_endpoint"
    async with served.client(key) as c:
        missing = await c.post(TRANSCRIPTIONS, files={"model": (None, "whisper-1")})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    assert sent(simulator, TRANSCRIPTIONS) == before
    assert await served.balance_usd(mkey) == "10"
    assert await usage_records(served, mkey) == []


async def test_an_oversized_file_is_refused(served: Served, simulator: Simulator) -> None:
    mkey, key = await customer(served)
    big = wav(10) + b"\x00" * (25 * 1024 * 1024)
    async with served.client(key) as c:
        got = await c.post(
            TRANSCRIPTIONS,
            files={"file": ("big.wav", io.BytesIO(big), "audio/wav")},
            data={"model": "whisper-1"},
        )
    assert got.status_code == 413, got.text
    assert got.json()["error"]["param"] == "file"
    assert await served.balance_usd(mkey) == "10"


async def test_a_file_that_cannot_be_afforded_is_402(served: Served) -> None:
    # 60 s of WAV holds a minute of whisper: $0.006, more than $0.005
    mkey, key = await customer(served, credit="0.005")
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.audio.transcriptions.create(
                model="whisper-1", file=("a.wav", wav(60_000, rate=8_000), "audio/wav")
            )
    assert caught.value.status_code == 402
    assert await served.balance_usd(mkey) == "0.005"


# --- billing modes -------------------------------------------------------------------


async def test_a_per_call_only_model_refuses_a_pay_per_use_token(
    served: Served, simulator: Simulator
) -> None:
    got = await served.admin.post(
        "/api/models",
        json={
            "id": "flat-tts",
            "kind": "speech",
            "provider": "custom",
            "per_call": {"price": "0.01"},
        },
    )
    assert got.status_code == 201, got.text
    mkey, key = await customer(served, billing_mode="pay_per_use")
    before = sent(simulator, SPEECH)
    async with sdk(served, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.audio.speech.create(model="flat-tts", input="hi", voice="alloy")
    assert caught.value.code == "billing_mode_mismatch"
    assert sent(simulator, SPEECH) == before
    assert await served.balance_usd(mkey) == "10"
    _, per_call_key = await customer(served, billing_mode="pay_per_call")
    async with sdk(served, per_call_key) as client:
        raw = await client.audio.speech.with_raw_response.create(
            model="flat-tts", input="hi", voice="alloy"
        )
    assert raw.headers["x-tollway-billing-method"] == "per_call"


# --- quotes -----------------------------------------------------------------------------


async def test_quotes_price_characters_and_audio_minutes(served: Served) -> None:
    mkey, _ = await customer(served)
    speech = {"model": "tts-1", "input": HELLO, "voice": "alloy"}
    async with served.client(mkey) as c:
        by_body = await c.post(
            "/api/quote", json={"model": "tts-1", "billing_mode": "pay_per_use", "request": speech}
        )
        by_minutes = await c.post(
            "/api/quote",
            json={"model": "whisper-1", "billing_mode": "pay_per_use", "audio_input_ms": 90_000},
        )
        no_file = await c.post(
            "/api/quote",
            json={"model": "whisper-1", "billing_mode": "pay_per_use", "request": {"x": 1}},
        )
        bad_voice = await c.post(
            "/api/quote",
            json={"model": "tts-1", "billing_mode": "pay_per_use",
                  "request": {**speech, "voice": "robot"}},
        )  # fmt: skip
    assert by_body.status_code == 200, by_body.text
    quote = by_body.json()
    assert Decimal(quote["cost_usd"]) == cost(served, "tts-1", Usage(input_characters=len(HELLO)))
    assert quote["breakdown"] == [
        {
            "name": "input_characters",
            "quantity": len(HELLO),
            "unit_price_usd": "15",
            "per": "1M characters",
            "cost_usd": quote["cost_usd"],
        }
    ]
    assert by_minutes.status_code == 200, by_minutes.text
    assert by_minutes.json()["cost_usd"] == "0.009"
    assert by_minutes.json()["breakdown"][0]["per"] == "minute"
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "request"
    assert bad_voice.status_code == 400 and bad_voice.json()["error"]["param"] == "voice"
