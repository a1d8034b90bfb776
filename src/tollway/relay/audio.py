"""/v1/audio: speech (text to audio) and transcriptions and translations
(audio to text), billed by their own units (billing/audio.py, docs/audio.md).

- ``POST /v1/audio/speech`` (JSON): the audio is streamed back as the
  upstream makes it, with its content type (``audio/mpeg`` ...; SSE for
  ``stream_format: "sse"``). tts-1 and tts-1-hd are billed by the characters
  of ``input`` (the hold is exactly that); gpt-4o-mini-tts by tokens, from
  the SSE ``speech.audio.done`` usage, else by the estimate. The call is
  settled when the stream ends; a stream cut short (by either side) is
  billed all the same, the record saying how it ended.
- ``POST /v1/audio/transcriptions`` and ``/translations`` (multipart, a
  ``file`` of at most 25 MB): whisper-1 billed by the minute of audio,
  gpt-4o(-mini)-transcribe by tokens; ``stream=true`` (gpt-4o-transcribe)
  relays the upstream's SSE events and bills from ``transcript.text.done``.
  The text, srt and vtt formats are plain text and carry no usage.

A multipart body goes upstream re-encoded with the catalog's model id, which
a channel's ``model_mapping`` renames in it (failover.renamed).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing import audio
from tollway.billing.shapes import AudioShape, CallShape
from tollway.endpoints import SPEECH, TRANSCRIPTIONS, TRANSLATIONS, MeteredEndpoint
from tollway.errors import ApiError, bad_request
from tollway.gateway import Gateway
from tollway.ledger import UsageStatus
from tollway.protocols.openai_audio import audio_usage_from_openai
from tollway.providers import Outbound
from tollway.providers.base import INTERRUPTED
from tollway.relay.forward import MeteredStream, open_stream, released_on_failure
from tollway.relay.multipart import Form, read_form
from tollway.relay.pipeline import COST_HEADER, Call, Inbound, Metered, run
from tollway.state import TokenInfo
from tollway.transport import UpstreamAnswer
from tollway.types import BillingMethod, Model, Usage, UsageSource, nano_to_usd

log = logging.getLogger(__name__)

SSE = "text/event-stream"

# --- speech -------------------------------------------------------------------


def _speech_shape(inbound: Inbound, model: Model) -> CallShape:
    asked = audio.speech_request(inbound.payload, model)
    shape = audio.speech_shape(asked, inbound.payload)
    return CallShape(len(inbound.body), max_output_tokens=0, audio=shape)


async def _forward_speech(call: Call, inbound: Inbound, request: Request) -> Response:
    asked = audio.speech_request(inbound.payload, call.model)
    upstream = await open_stream(call, call.outbound(inbound, stream=True))
    sse = asked.stream_format == "sse"
    kind = upstream.header("content-type") or (
        SSE if sse else audio.SPEECH_FORMATS[asked.response_format]
    )
    meter = SpeechMeter(call, asked.text, sse)
    return AudioStream(call, upstream, kind, meter)  # type: ignore[return-value]


SPEECH_CALL = Metered(SPEECH, "audio/speech", _speech_shape, _forward_speech)


async def speech(request: Request) -> Response:
    result: Response = await run(SPEECH_CALL, request)
    return result


class SpeechMeter:
    """A speech stream's scanner (relay/forward.py's StreamScanner): it passes
    every chunk on, and says what the call is billed by: its characters, or the
    usage its SSE ``speech.audio.done`` event reports, else the estimate."""

    def __init__(self, call: Call, text: str, sse: bool) -> None:
        self.call = call
        self.text = text
        self.sse = sse
        self.usage: Usage | None = None  # reported
        self.done = True  # raw audio says nothing of its end (AudioStream: its body's end)
        self.failed = False
        self.delivered = 0
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        self.delivered += len(chunk)
        if self.sse:
            self._buffer += chunk.replace(b"\r\n", b"\n")
            *events, self._buffer = self._buffer.split(b"\n\n")
            for event in events:
                self._take(event)
        return chunk

    def _take(self, event: bytes) -> None:
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            try:
                parsed = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
                self.usage = audio_usage_from_openai(parsed["usage"])

    def output_text(self) -> str:
        return ""  # speech is counted from its input (billed)

    def delivered_choices(self) -> int:
        return 1 if self.delivered else 0

    def interrupted(self) -> bytes:
        return INTERRUPTED if self.sse else b""  # raw audio has no way to say it

    async def billed(self) -> Usage:
        shape = self.call.shape.audio
        assert shape is not None  # _speech_shape made it
        price = self.call.model.per_use
        if self.call.method is BillingMethod.PER_CALL or price is None:
            return Usage()
        if price.input_mchar is not None:  # the request's own characters, exact
            return Usage(input_characters=shape.characters)
        if self.usage is not None:
            return self.usage
        counter = await self.call.gw.counter.ready()
        return audio.speech_estimate(shape, counter.count(self.text))


class AudioStream(MeteredStream):
    """A MeteredStream of the upstream's audio (or SSE) in its own content
    type, billed by its SpeechMeter when it ends, before the client's last byte."""

    ends_in_its_events = False

    def __init__(
        self, call: Call, upstream: UpstreamAnswer, content_type: str, meter: SpeechMeter
    ) -> None:
        super().__init__(call, upstream, meter, _not_by_its_text, items=1)
        self.content_type = content_type
        self.meter = meter

    async def _finish(self, status: UsageStatus) -> None:
        call = self.call
        try:
            if self.meter.delivered == 0 and call.method is BillingMethod.PER_CALL:
                await call.release(status, "no audio reached the client: nothing to charge")
                return
            usage = await self.meter.billed()
            detail = None if status is UsageStatus.OK else "the audio stream did not end whole"
            await call.settle(usage, status, detail)
        except Exception:
            log.exception(
                "settling %s failed; its hold stays open for reconciliation", call.request_id
            )

    def _headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", self.content_type.encode()), (b"cache-control", b"no-cache")]
        headers += [(k.encode(), v.encode()) for k, v in self.call.headers().items()]
        return headers


def _not_by_its_text(text: str) -> Usage:
    raise AssertionError("a speech stream is billed by its SpeechMeter, not counted")


# --- transcriptions and translations ----------------------------------------------


@dataclass
class AudioUpload:
    """A transcription request as read: its form, and its file's head and size."""

    form: Form
    file: UploadFile
    head: bytes
    size: int


async def _read_upload(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    form = await read_form(request, gw.settings.max_body_bytes)
    try:
        upload = await _upload(form)
        fields = _text_fields(form)
    except BaseException:
        await form.close()
        raise
    return Inbound(fields, b"", source=upload, close=form.close, json=False)


async def _upload(form: Form) -> AudioUpload:
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise bad_request("'file' must be an audio file (multipart/form-data).", param="file")
    await file.seek(0)
    head = await file.read(audio.WAV_HEAD_BYTES)
    size = file.size if file.size is not None else len(head)
    if size > audio.MAX_AUDIO_BYTES:
        raise ApiError(
            413, f"'file' is {size} bytes; the most is {audio.MAX_AUDIO_BYTES} (25 MB).",
            "file_too_large", param="file",
        )  # fmt: skip
    if not audio.looks_like_audio(head):
        raise bad_request(
            "'file' is not audio in a format the API takes (flac, mp3, mp4, mpeg, mpga, m4a, "
            "ogg, wav, webm).",
            param="file",
            code="invalid_file_format",
        )
    return AudioUpload(form, file, head, size)


def _text_fields(form: Form) -> dict[str, Any]:
    """The form's text fields (the last of a repeated one); a file where text
    is expected is a 400."""
    fields: dict[str, Any] = {}
    for name, value in form.items:
        if name == "file" or name.endswith("[]"):
            continue
        if not isinstance(value, str):
            raise bad_request(f"'{name}' must be text, not a file.", param=name)
        fields[name] = value
    granularities = [value for name, value in form.items if name == "timestamp_granularities[]"]
    audio.check_granularities(granularities)
    return fields


def _transcription_shape(inbound: Inbound, model: Model, translating: bool) -> CallShape:
    audio.transcription_fields(inbound.payload, translating)
    upload: AudioUpload = inbound.source
    prompt = inbound.payload.get("prompt")
    shape = audio.transcription_shape(upload.head, upload.size, prompt, upload.file.file)
    return CallShape(0, max_output_tokens=0, audio=shape)


async def _forward_transcription(call: Call, inbound: Inbound, request: Request) -> Response:
    upload: AudioUpload = inbound.source
    fields = inbound.payload
    fmt = fields.get("response_format", "json")
    async with released_on_failure(call):
        body, content_type = await upload.form.encode({"model": call.model.id})
    streaming = fields.get("stream") == "true" and call.model.id != "whisper-1"
    outbound = Outbound(call.endpoint, body, None, content_type=content_type, stream=streaming)
    if streaming:
        upstream = await open_stream(call, outbound)
        estimate = _estimator(call, fields.get("prompt"))
        return MeteredStream(call, upstream, TranscriptScanner(), estimate, 1)  # type: ignore[return-value]
    async with released_on_failure(call):
        resp = await call.send(outbound)
        try:
            data = await resp.read()
        finally:
            resp.close()
        answered_type = resp.header("content-type")
    if resp.status != 200:
        await call.release(UsageStatus.UPSTREAM_ERROR, f"upstream answered HTTP {resp.status}")
        raise call.provider.failure(resp.status, data)
    async with released_on_failure(call):  # a bug reading the answer gives the hold back
        usage = await _transcription_usage(call, data, fmt, fields.get("prompt"))
    status, detail = UsageStatus.OK, None
    if await request.is_disconnected():
        status = UsageStatus.CLIENT_DISCONNECTED
        detail = "the client left before the answer; the upstream had done the work"
    cost = await call.settle(usage, status, detail)
    headers = call.headers()
    headers[COST_HEADER] = nano_to_usd(cost)
    text = fmt in audio.TEXT_FORMATS
    kind = answered_type or ("text/plain; charset=utf-8" if text else "application/json")
    return Response(data, 200, headers, media_type=kind)


async def _transcription_usage(call: Call, data: bytes, fmt: str, prompt: str | None) -> Usage:
    """The answer's usage, else (a text format, an upstream without usage) the estimate."""
    if call.method is BillingMethod.PER_CALL or call.model.per_use is None:
        return Usage()
    parsed: Any = None
    if fmt not in audio.TEXT_FORMATS:
        with contextlib.suppress(orjson.JSONDecodeError):
            parsed = orjson.loads(data)
    if isinstance(parsed, dict):
        reported = parsed.get("usage")
        usage = audio_usage_from_openai(reported) if isinstance(reported, dict) else None
        if usage is not None and _fits(usage, call.model):
            return usage
        heard = audio.reported_ms(parsed)  # a verbose answer's duration
        if heard is not None and call.model.per_use.audio_input_minute is not None:
            return Usage(audio_input_ms=heard)
        text = parsed.get("text")
    else:
        text = data.decode("utf-8", "replace")
    await call.gw.counter.ready()
    return _estimator(call, prompt)(text if isinstance(text, str) else "")


def _fits(usage: Usage, model: Model) -> bool:
    """Whether a usage is in the units the model is priced by (a duration for
    a per-minute model, tokens for a token-priced one)."""
    by_minute = model.per_use is not None and model.per_use.audio_input_minute is not None
    return usage.audio_input_ms > 0 if by_minute else usage.audio_input_ms == 0


def _estimator(call: Call, prompt: str | None) -> Any:
    shape: AudioShape | None = call.shape.audio
    assert shape is not None  # _transcription_shape made it
    counter = call.gw.counter

    def estimate(text: str) -> Usage:
        usage = audio.transcription_estimate(
            shape, call.model, counter.count(prompt or ""), counter.count(text)
        )
        usage.source = UsageSource.ESTIMATED
        return usage

    return estimate


def _recipe(endpoint: MeteredEndpoint, upstream: str, translating: bool) -> Metered:
    def shape(inbound: Inbound, model: Model) -> CallShape:
        return _transcription_shape(inbound, model, translating)

    return Metered(endpoint, upstream, shape, _forward_transcription, read=_read_upload)


TRANSCRIPTION_CALL = _recipe(TRANSCRIPTIONS, "audio/transcriptions", False)
TRANSLATION_CALL = _recipe(TRANSLATIONS, "audio/translations", True)


async def transcriptions(request: Request) -> Response:
    result: Response = await run(TRANSCRIPTION_CALL, request)
    return result


async def translations(request: Request) -> Response:
    result: Response = await run(TRANSLATION_CALL, request)
    return result


class TranscriptScanner:
    """A transcription's SSE stream (``transcript.text.delta`` ...
    ``transcript.text.done`` with usage), passed through as it comes."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.done = False
        self.failed = False
        self._buffer = b""
        self._text: list[str] = []

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        for event in events:
            self._take(event)
        return chunk

    def _take(self, event: bytes) -> None:
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            try:
                parsed = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            if not isinstance(parsed, dict):
                continue
            if isinstance(parsed.get("error"), dict):
                self.failed = True
            kind = parsed.get("type")
            if kind == "transcript.text.delta" and isinstance(parsed.get("delta"), str):
                self._text.append(parsed["delta"])
            elif kind == "transcript.text.done":
                self.done = True
                if isinstance(parsed.get("usage"), dict):
                    self.usage = audio_usage_from_openai(parsed["usage"])

    def output_text(self) -> str:
        return "".join(self._text)

    def delivered_choices(self) -> int:
        return 1 if self._text or self.done else 0

    def interrupted(self) -> bytes:
        return b"" if self.failed else INTERRUPTED
