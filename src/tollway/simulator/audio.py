"""``POST /v1/audio/speech``, ``/v1/audio/transcriptions`` and ``/translations``
in OpenAI's wire shapes (docs/research/openai-surface-shapes.md section 3).

- Speech: deterministic audio of the asked format, streamed in chunks: a
  valid 24 kHz 16-bit mono WAV (``wav``; raw samples for ``pcm``), the
  format's magic bytes then filler for the others. Its length is the text at
  12 characters a second x speed (at most ``MAX_SPEECH_MS``). With
  ``stream_format: "sse"``, ``speech.audio.delta`` events (base64) and a
  ``speech.audio.done`` with token usage (text words in, 20 audio tokens a
  second out); raw audio carries no usage.
- Transcription: the audio's duration (from a WAV header, else its size at
  16,000 bytes a second) and a deterministic text. ``json`` and
  ``verbose_json`` carry usage: whisper-1 ``{type: "duration", seconds}``
  (whole seconds, rounded up), the gpt-4o ones ``{type: "tokens", ...}``;
  ``text``, ``srt`` and ``vtt`` are plain text without usage.
  gpt-4o(-mini)-transcribe take ``json`` only and stream with ``stream=true``.
- Translation: as whisper-1's transcription, but its JSON answers carry no
  usage (the SDK's types have none).
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from .common import STATE, ApiError, begin_call, json_response, read_json, require_model
from .directives import NO_DIRECTIVES

SAMPLE_RATE = 24_000
MAX_SPEECH_MS = 30_000
CHUNK_BYTES = 4096
BYTES_PER_SECOND = 16_000  # a file that is not WAV is read as 128 kbit/s
AUDIO_TOKENS_PER_SECOND = 10
SPEECH_TOKENS_PER_SECOND = 20
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
MAGIC = {
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "opus": b"OggS",
    "aac": b"\xff\xf1",
    "flac": b"fLaC",
}
TEXT_FORMATS = ("text", "srt", "vtt")
FORMATS = ("json", "verbose_json", *TEXT_FORMATS)
WORDS = ("maybe", "next", "time", "the", "audio", "says", "hello", "again", "and", "then")


# --- speech -----------------------------------------------------------------------


def speech_ms(text: str, speed: float) -> int:
    return min(math.ceil(len(text) * 1000 / 12 / speed), MAX_SPEECH_MS)


def wav_bytes(ms: int, seed: bytes) -> bytes:
    """A valid mono 16-bit WAV of ``ms`` milliseconds."""
    samples = pcm_bytes(ms, seed)
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE"
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    return (
        header
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(samples))
        + samples
    )


def pcm_bytes(ms: int, seed: bytes) -> bytes:
    count = SAMPLE_RATE * ms // 1000
    pattern = hashlib.shake_256(seed).digest(2048)
    return (pattern * (2 * count // len(pattern) + 1))[: 2 * count]


def speech_audio(fmt: str, ms: int, seed: bytes) -> bytes:
    if fmt == "wav":
        return wav_bytes(ms, seed)
    if fmt == "pcm":
        return pcm_bytes(ms, seed)
    filler = hashlib.shake_256(seed).digest(max(ms * 4, 64))  # about 32 kbit/s
    return MAGIC[fmt] + filler


def _speed(body: dict[str, Any]) -> float:
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4:
        raise ApiError(400, "speed must be between 0.25 and 4.0", param="speed")
    return float(speed)


async def speech(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await read_json(request)
    model = require_model(body)
    text = body.get("input")
    if not isinstance(text, str) or not text or len(text) > 4096:
        raise ApiError(400, "input must be a string of 1 to 4096 characters", param="input")
    if body.get("voice") is None:
        raise ApiError(400, "you must provide a voice", param="voice")
    fmt = body.get("response_format") or "mp3"
    if fmt not in CONTENT_TYPES:
        raise ApiError(
            400,
            f"response_format must be one of {', '.join(CONTENT_TYPES)}",
            param="response_format",
        )
    sse = body.get("stream_format") == "sse"
    if sse and model.startswith("tts-1"):
        raise ApiError(
            400, "stream_format 'sse' is not supported for this model", param="stream_format"
        )
    await begin_call(state, NO_DIRECTIVES)
    ms = speech_ms(text, _speed(body))
    data = speech_audio(fmt, ms, text.encode())
    kind = "text/event-stream" if sse else CONTENT_TYPES[fmt]
    resp = web.StreamResponse(headers={"Content-Type": kind})
    await resp.prepare(request)
    for at in range(0, len(data), CHUNK_BYTES):
        chunk = data[at : at + CHUNK_BYTES]
        if sse:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()}
            chunk = b"data: " + orjson.dumps(event) + b"\n\n"
        await resp.write(chunk)
    if sse:
        words = len(text.split())
        audio_tokens = math.ceil(ms * SPEECH_TOKENS_PER_SECOND / 1000)
        usage = {
            "input_tokens": words,
            "output_tokens": audio_tokens,
            "total_tokens": words + audio_tokens,
        }
        done = {"type": "speech.audio.done", "usage": usage}
        await resp.write(b"data: " + orjson.dumps(done) + b"\n\n")
    await resp.write_eof()
    return resp


# --- transcription ------------------------------------------------------------------


async def _read_form(request: web.Request) -> dict[str, Any]:
    """The multipart fields; the file as (filename, bytes)."""
    if request.content_type != "multipart/form-data":
        raise ApiError(400, "send the audio as multipart/form-data")
    fields: dict[str, Any] = {}
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                fields[part.name] = (part.filename, await part.read())
            else:
                fields.setdefault(part.name, await part.text())
    except (ValueError, AssertionError) as exc:
        raise ApiError(400, f"We could not parse the multipart body: {exc}") from exc
    summary = {
        k: (v if isinstance(v, str) else {"filename": v[0], "bytes": len(v[1])})
        for k, v in fields.items()
    }
    request.app[STATE].stats.recent.append(
        {"method": request.method, "path": request.path, "body": summary}
    )
    return fields


def duration_ms(data: bytes) -> int:
    """A WAV's duration from its header, else the size at 128 kbit/s."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        at, rate = 12, 0
        while at + 8 <= len(data):
            name, size = data[at : at + 4], struct.unpack_from("<I", data, at + 4)[0]
            if name == b"fmt ":
                rate = struct.unpack_from("<I", data, at + 16)[0]
            elif name == b"data" and rate:
                return math.ceil(min(size, len(data) - at - 8) * 1000 / rate)
            at += 8 + size + (size & 1)
    return math.ceil(len(data) * 1000 / BYTES_PER_SECOND)


def transcript(data: bytes, ms: int) -> str:
    """Two words a second of audio (at least one), chosen by the audio's bytes."""
    digest = hashlib.sha256(data).digest()
    count = max(1, ms * 2 // 1000)
    return (
        " ".join(WORDS[digest[i % len(digest)] % len(WORDS)] for i in range(count)).capitalize()
        + "."
    )


def _usage(model: str, ms: int, prompt: str, text: str) -> dict[str, Any]:
    if model.startswith("whisper"):
        return {"type": "duration", "seconds": math.ceil(ms / 1000)}
    text_tokens = len(prompt.split())
    audio_tokens = math.ceil(ms * AUDIO_TOKENS_PER_SECOND / 1000)
    output = len(text.split())
    return {
        "type": "tokens",
        "input_tokens": text_tokens + audio_tokens,
        "input_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
        "output_tokens": output,
        "total_tokens": text_tokens + audio_tokens + output,
    }


def _subtitles(fmt: str, text: str, ms: int) -> str:
    end = f"00:00:{ms // 1000:02d}{',' if fmt == 'srt' else '.'}{ms % 1000:03d}"
    start = "00:00:00,000" if fmt == "srt" else "00:00:00.000"
    if fmt == "srt":
        return f"1\n{start} --> {end}\n{text}\n\n"
    return f"WEBVTT\n\n{start} --> {end}\n{text}\n\n"


async def _audio_text(request: web.Request, translating: bool) -> web.StreamResponse:
    state = request.app[STATE]
    fields = await _read_form(request)
    model = require_model({"model": fields.get("model")})
    upload = fields.get("file")
    if not isinstance(upload, tuple) or not upload[1]:
        raise ApiError(400, "you must provide an audio file", param="file")
    fmt = fields.get("response_format") or "json"
    if fmt not in FORMATS:
        raise ApiError(
            400, f"response_format must be one of {', '.join(FORMATS)}", param="response_format"
        )
    token_model = not model.startswith("whisper")
    if token_model and fmt != "json":
        raise ApiError(
            400,
            f"response_format '{fmt}' is not compatible with model '{model}'",
            param="response_format",
        )
    await begin_call(state, NO_DIRECTIVES)
    data = upload[1]
    ms = duration_ms(data)
    prompt = fields.get("prompt") or ""
    text = transcript(data, ms)
    if token_model and fields.get("stream") == "true":
        return await _stream(request, model, ms, prompt, text)
    if fmt == "text":
        return web.Response(text=text + "\n", content_type="text/plain")
    if fmt in ("srt", "vtt"):
        return web.Response(text=_subtitles(fmt, text, ms), content_type="text/plain")
    out: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        out = {
            "task": "translate" if translating else "transcribe",
            "language": "english",
            "duration": ms / 1000,
            "text": text,
            "segments": [
                {"id": 0, "seek": 0, "start": 0.0, "end": ms / 1000, "text": text, "tokens": []}
            ],
        }
    if not translating:
        out["usage"] = _usage(model, ms, prompt, text)
    return json_response(out)


async def _stream(
    request: web.Request, model: str, ms: int, prompt: str, text: str
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for word in text.split(" "):
        event = {"type": "transcript.text.delta", "delta": word + " "}
        await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
    done = {"type": "transcript.text.done", "text": text, "usage": _usage(model, ms, prompt, text)}
    await resp.write(b"data: " + orjson.dumps(done) + b"\n\n")
    await resp.write_eof()
    return resp


async def transcriptions(request: web.Request) -> web.StreamResponse:
    return await _audio_text(request, translating=False)


async def translations(request: web.Request) -> web.StreamResponse:
    return await _audio_text(request, translating=True)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/translations", translations)
